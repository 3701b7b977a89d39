// Opens reports in headless Chromium (the Debian package, driven by playwright-core) and checks what a reader
// sees: every chart drew on its canvas, nothing logged an error, nothing went to the network, nothing injected ran.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { announceSkip } from '@edgefl/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { launchChromium, openReport } from '../../test/chromium.js';
import type { DemoSummary } from '../demo/summary.js';
import { binarySummary, emptySummary, hostileSummary, realisticSummary } from './fixtures/summaries.js';
import { reportCharts } from './render.js';
import { writeReport } from './write-report.js';

const launched = await launchChromium();
if (!('browser' in launched)) announceSkip('report browser test', launched.why);
const browser = 'browser' in launched ? launched.browser : undefined;
const dir = mkdtempSync(join(tmpdir(), 'edgefl-report-browser-'));

afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function open(name: string, summary: DemoSummary, viewport?: { width: number; height: number }) {
  const file = join(dir, `${name}.html`);
  await writeReport(summary, file);
  return openReport(browser!, file, viewport);
}

describe.skipIf(browser === undefined)('the report in headless Chromium', () => {
  it.each([
    ['a realistic multiclass run', realisticSummary()],
    ['a binary run (every chart, ROC AUC too)', binarySummary()],
  ])('%s: every chart renders, with no console error and no request', async (_name, summary) => {
    const opened = await open(summary.settings.task, summary);
    try {
      expect(opened.problems).toEqual([]);
      expect(opened.requests).toEqual([]);
      const expected = reportCharts(summary).map((c) => `chart-${c.id}`);
      expect(expected.length).toBeGreaterThanOrEqual(9);
      expect(opened.canvases.map((c) => c.id)).toEqual(expected);
      for (const canvas of opened.canvases) {
        expect(canvas, canvas.id).toMatchObject({ hasChart: true });
        expect(canvas.width, canvas.id).toBeGreaterThan(100);
        expect(canvas.height, canvas.id).toBeGreaterThan(100);
        // axes, labels and bars: a chart that drew only its frame paints far fewer pixels
        expect(canvas.paintedPixels, canvas.id).toBeGreaterThan(2_000);
      }
    } finally {
      await opened.page.close();
    }
  });

  it('a report whose strings carry markup runs none of it and still renders every chart', async () => {
    const summary = hostileSummary();
    const opened = await open('hostile', summary);
    try {
      expect(opened.dialogs).toEqual([]);
      expect(opened.problems).toEqual([]);
      expect(opened.requests).toEqual([]);
      expect(await opened.page.locator('img').count()).toBe(0);
      expect(await opened.page.locator('#settings').innerText()).toContain('<img src=x onerror=alert(1)>');
      expect(opened.canvases.map((c) => c.id)).toEqual(reportCharts(summary).map((c) => `chart-${c.id}`));
      expect(opened.canvases.every((c) => c.hasChart && c.paintedPixels > 2_000)).toBe(true);
    } finally {
      await opened.page.close();
    }
  });

  it('reads on a phone: nothing wider than a 390 px screen, every chart still drawn', async () => {
    const summary = realisticSummary();
    const opened = await open('phone', summary, { width: 390, height: 844 });
    try {
      expect(opened.problems).toEqual([]);
      const pageWidth = await opened.page.evaluate(
        () =>
          (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document
            .documentElement.scrollWidth,
      );
      expect(pageWidth).toBeLessThanOrEqual(390);
      expect(opened.canvases).toHaveLength(reportCharts(summary).length);
      for (const canvas of opened.canvases) {
        expect(canvas.width, canvas.id).toBeLessThanOrEqual(390 * 2);
        expect(canvas.paintedPixels, canvas.id).toBeGreaterThan(1_000);
      }
    } finally {
      await opened.page.close();
    }
  });

  it('a run with nothing to chart opens cleanly and says so in words', async () => {
    const opened = await open('empty', emptySummary());
    try {
      expect(opened.problems).toEqual([]);
      expect(opened.requests).toEqual([]);
      expect(opened.canvases).toEqual([]);
      expect(await opened.page.locator('p.empty').count()).toBeGreaterThanOrEqual(8);
    } finally {
      await opened.page.close();
    }
  });
});
