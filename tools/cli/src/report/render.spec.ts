import { createHash } from 'node:crypto';
import { parse, type DefaultTreeAdapterMap } from 'parse5';
import { describe, expect, it } from 'vitest';
import type { DemoSummary } from '../demo/summary.js';
import {
  binarySummary,
  emptySummary,
  HOSTILE,
  hostileSummary,
  realisticSummary,
} from './fixtures/summaries.js';
import { renderReport, reportCharts } from './render.js';

type Node = DefaultTreeAdapterMap['node'];
type Element = DefaultTreeAdapterMap['element'];

/** The report as a browser's parser sees it. */
function parsed(summary: DemoSummary) {
  const html = renderReport(summary);
  const elements: Element[] = [];
  const walk = (node: Node) => {
    if ('tagName' in node) elements.push(node);
    if ('childNodes' in node) node.childNodes.forEach(walk);
    if (node.nodeName === 'template') walk((node as DefaultTreeAdapterMap['template']).content);
  };
  const parseErrors: string[] = [];
  walk(parse(html, { onParseError: (e) => parseErrors.push(`${e.code} at line ${e.startLine}`) }));
  const text = (node: Node): string =>
    node.nodeName === '#text'
      ? (node as DefaultTreeAdapterMap['textNode']).value
      : 'childNodes' in node
        ? node.childNodes.map(text).join('')
        : '';
  const byTag = (tag: string) => elements.filter((e) => e.tagName === tag);
  const attr = (e: Element, name: string) => e.attrs.find((a) => a.name === name)?.value;
  const body = byTag('body')[0]!;
  const bodyText = byTag('main').map(text).join('').replace(/\s+/g, ' ');
  const section = (id: string) => {
    const found = elements.find((e) => e.tagName === 'section' && attr(e, 'id') === id);
    if (!found) throw new Error(`no section #${id}`);
    return text(found).replace(/\s+/g, ' ');
  };
  const chartData = JSON.parse(text(elements.find((e) => attr(e, 'id') === 'edgefl-report-charts')!)) as {
    id: string;
    config: { data: { labels: string[] } };
  }[];
  return { html, parseErrors, elements, byTag, attr, body, bodyText, section, chartData, text };
}

const canvasIds = (page: ReturnType<typeof parsed>) => page.byTag('canvas').map((c) => page.attr(c, 'id'));

describe('renderReport', () => {
  it('draws every chart of a realistic run and states the headline: what ran, final accuracy vs baseline', () => {
    const page = parsed(realisticSummary());
    expect(canvasIds(page)).toEqual([
      'chart-accuracy',
      'chart-epsilon',
      'chart-updates',
      'chart-rollout',
      'chart-version-mix',
      'chart-ota-bytes',
      'chart-round-bytes',
      'chart-latency-edge',
      'chart-latency-cloud',
    ]);
    expect(page.chartData.map((c) => `chart-${c.id}`)).toEqual(canvasIds(page));
    const headline = page.text(page.elements.find((e) => page.attr(e, 'class') === 'headline')!);
    expect(headline).toContain(
      '100 simulated devices trained a multiclass classifier on digits for 10 rounds',
    );
    expect(headline).toContain(
      'aggregated with trimmed-mean under secure aggregation with differential privacy',
    );
    expect(headline).toContain('20% of the devices (20) were attackers (sign-flip)');
    expect(headline).toContain(
      'The final model reaches 91.7% test accuracy, 4.1 points below centralized training on the same data (95.8%).',
    );
    expect(headline).toContain('The aggregator rejected 23 updates.');
    expect(headline).toContain('9 of 10 releases reached the whole fleet.');
    expect(headline).toContain('Deltas cut download bytes by 63% (13.9 MB instead of 37.6 MB).');
  });

  it('shows the figures themselves: settings, rounds, rejection reasons, releases, latency', () => {
    const page = parsed(realisticSummary());
    expect(page.section('settings')).toContain('aggregation ruletrimmed-mean');
    expect(page.section('settings')).toContain('differential privacyε = 3, δ = 1e-5');
    expect(page.section('settings')).toContain('started2026-12-07 09:00:04 UTC');
    expect(page.section('accuracy')).toContain('rnd-5a5dff');
    expect(page.section('rejected')).toContain('23 updates rejected, for 5 reasons:');
    expect(page.section('rejected')).toContain('round closed: the update arrived after the deadline8');
    expect(page.section('rollout')).toContain('v6halted');
    expect(page.section('rollout')).toContain('95 devices on v11, 3 devices on v10, 2 devices on v9');
    expect(page.section('ota')).toContain('862 as deltas (9.9 MB), 104 as full models (4.0 MB)');
    expect(page.section('latency')).toContain('19,809 requests, p50 0.31 ms, p99 1.9 ms');
    const accuracy = page.chartData.find((c) => c.id === 'accuracy')!.config as unknown as {
      data: { datasets: { data: number[] }[] };
    };
    expect(accuracy.data.datasets[0]!.data.at(-1)).toBe(91.7);
    expect(accuracy.data.datasets[1]!.data).toEqual(new Array(10).fill(95.8));
  });

  it('adds the ROC AUC chart for a binary task only', () => {
    const multiclass = parsed(realisticSummary());
    expect(canvasIds(multiclass)).not.toContain('chart-roc-auc');
    expect(multiclass.section('roc-auc')).toContain(
      'No ROC AUC chart: the task is multiclass, and ROC AUC is reported for binary tasks only.',
    );
    const binary = parsed(binarySummary());
    expect(canvasIds(binary)).toContain('chart-roc-auc');
    expect(binary.bodyText).toContain('final ROC AUC0.926');
    expect(binary.bodyText).toContain('Its ROC AUC is 0.926 (centralized: 0.962).');
    expect(multiclass.bodyText).not.toContain('Its ROC AUC');
  });

  it('says in words what a run without rounds, rejections, releases, DP, downloads or requests lacks', () => {
    const page = parsed(emptySummary());
    expect(page.byTag('canvas')).toEqual([]);
    expect(page.chartData).toEqual([]);
    expect(page.section('accuracy')).toContain('No round finished: there is no accuracy to chart.');
    expect(page.section('privacy')).toContain('Differential privacy was off (no --dp-epsilon)');
    expect(page.section('rejected')).toContain('No update was rejected');
    expect(page.section('rollout')).toContain('No release was rolled out: no round produced a new version.');
    expect(page.section('rollout')).toContain('No device reported a model version at the end of the run.');
    expect(page.section('ota')).toContain('No device downloaded a model');
    expect(page.section('latency')).toContain('No inference ran on a device during the run.');
    expect(page.section('latency')).toContain('No input was escalated to the cloud tier');
    expect(page.bodyText).toContain('No round finished, so there is no federated model to compare');
    expect(page.bodyText).toContain('No device attacked.');
    expect(page.section('settings')).toContain('aggregation ruleFedAvg (no robust rule)');
    // no section is left blank
    for (const section of page.byTag('section')) {
      expect(page.text(section).replace(/\s+/g, ' ').length).toBeGreaterThan(40);
    }
  });

  it('no rejections in a run that has everything else: the rejected section says so', () => {
    const s = realisticSummary();
    s.rejectedUpdates = [];
    s.rounds.forEach((r) => (r.rejected = 0));
    const page = parsed(s);
    expect(page.section('rejected')).toContain('No update was rejected');
    expect(page.byTag('table').some((t) => page.text(t).includes('reason'))).toBe(false);
  });

  it('escapes every string of the summary: markup shows as text and runs nowhere', () => {
    const page = parsed(hostileSummary());
    // the three scripts of the page, nothing injected
    const scripts = page.byTag('script');
    expect(scripts.map((s) => page.attr(s, 'type') ?? 'js')).toEqual(['application/json', 'js', 'js']);
    expect(page.byTag('img')).toEqual([]);
    expect(page.elements.filter((e) => e.attrs.some((a) => a.name.startsWith('on')))).toEqual([]);
    // the strings arrive intact as text: in the settings, the rejection table, the round table, the version mix
    expect(page.section('settings')).toContain(`label column${HOSTILE}`);
    expect(page.section('settings')).toContain(`aggregation rule${HOSTILE}`);
    expect(page.section('rejected')).toContain(HOSTILE);
    expect(page.section('accuracy')).toContain(HOSTILE);
    expect(page.section('rollout')).toContain(`3 devices on ${HOSTILE}`);
    expect(page.text(page.byTag('title')[0]!)).toContain(HOSTILE);
    // and intact in the chart data, which never carries a raw "<"
    const mix = page.chartData.find((c) => c.id === 'version-mix')!;
    expect(mix.config.data.labels).toContain(HOSTILE);
    const block = page.html.slice(page.html.indexOf('id="edgefl-report-charts">'));
    expect(block.slice(block.indexOf('>') + 1, block.indexOf('</script>'))).not.toMatch(/[<>&]/);
  });

  it('is self-contained: no element loads anything, and the CSP allows exactly the inline scripts', () => {
    const page = parsed(realisticSummary());
    expect(
      page.elements.filter((e) => e.attrs.some((a) => ['src', 'href', 'srcset'].includes(a.name))),
    ).toEqual([]);
    expect(page.byTag('link')).toEqual([]);
    const csp = page.byTag('meta').find((m) => page.attr(m, 'http-equiv') === 'Content-Security-Policy');
    const policy = page.attr(csp!, 'content')!;
    expect(policy).toMatch(/^default-src 'none'; /);
    const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
    const inline = page.byTag('script').filter((s) => page.attr(s, 'type') === undefined);
    expect(inline).toHaveLength(2);
    for (const script of inline) expect(policy).toContain(hash(page.text(script)));
    expect(policy).toContain(`style-src ${hash(page.text(page.byTag('style')[0]!))}`);
    // Chart.js travels with its licence
    expect(page.text(inline[0]!)).toMatch(
      /^\/\*! Chart\.js, inlined[\s\S]*The MIT License[\s\S]*Chart\.js v4/,
    );
  });

  it('has no HTML parse error and lists exactly the charts it draws, each described for its canvas', () => {
    for (const s of [realisticSummary(), binarySummary(), emptySummary(), hostileSummary()]) {
      const page = parsed(s);
      expect(page.parseErrors).toEqual([]);
      expect(reportCharts(s).map((c) => `chart-${c.id}`)).toEqual(canvasIds(page));
      for (const canvas of page.byTag('canvas'))
        expect(page.attr(canvas, 'aria-label')).toMatch(/^[A-Z]\S+( \S+){3,}/);
    }
  });

  it('shows the defence, the attacking devices, per-round baselines and each rejection’s detail and sender', () => {
    const s = binarySummary();
    s.settings.attackerIds = ['dev-0003', 'dev-0007'];
    s.settings.defence = {
      rule: 'multi-krum',
      params: { f: 2, m: 8 },
      maxNorm: 4,
      outlierZ: 3,
      bucketSize: null,
    };
    s.rounds.forEach((r, i) => (r.baseline = { accuracy: 0.9 + i * 0.001, rocAuc: 0.8 + i * 0.01 }));
    s.rejectedUpdates[0]!.detail = `L2 norm 9.1 exceeds the bound 4 ${HOSTILE}`;
    s.rejectedUpdates[0]!.attacker = true;
    const page = parsed(s);
    expect(page.parseErrors).toEqual([]);
    const settings = page.section('settings');
    expect(settings).toContain('f = 2, m = 8');
    expect(settings).toMatch(/norm bound \(reject above\)\s*4/);
    expect(settings).toContain('dev-0003, dev-0007');
    const rejected = page.section('rejected');
    expect(rejected).toContain('L2 norm 9.1 exceeds the bound 4');
    expect(rejected).toContain('yes');
    expect(page.html).not.toContain('<img src=x');
    // the baseline is drawn per round, not as a flat line, when every round carries it
    const charts = reportCharts(s);
    const accuracy = charts.find((c) => c.id === 'accuracy')!.config.data.datasets[1]!.data;
    expect(accuracy).toEqual(s.rounds.map((r) => Math.round(r.baseline!.accuracy * 100 * 100) / 100));
    const auc = charts.find((c) => c.id === 'roc-auc')!.config.data.datasets[1]!.data;
    expect(auc).toEqual(s.rounds.map((r) => Math.round(r.baseline!.rocAuc! * 1000) / 1000));
  });
});
