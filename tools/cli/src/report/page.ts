// The page's fixed parts: Chart.js inlined from its npm package (MIT: its licence text travels with it), the boot
// script, the style sheet, and a Content-Security-Policy that allows exactly these inline scripts and styles and no
// network at all, so a string that escaped escaping could still neither run nor fetch.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

let chartJs: string | undefined;

/** Chart.js's UMD build with its licence as a leading comment (read once). */
export function chartJsSource(): string {
  if (chartJs === undefined) {
    // the package exports only its module entries; the UMD build sits beside them in dist/
    const dist = dirname(createRequire(import.meta.url).resolve('chart.js'));
    const code = readFileSync(join(dist, 'chart.umd.min.js'), 'utf8');
    const licence = readFileSync(join(dist, '..', 'LICENSE.md'), 'utf8').replaceAll('*/', '* /');
    if (/<\/script/i.test(code))
      throw new Error('chart.umd.min.js contains "</script": it cannot be inlined');
    chartJs = `/*! Chart.js, inlined from the chart.js npm package.\n${licence}*/\n${code}`;
  }
  return chartJs;
}

/** Hands each chart configuration of the data block to Chart.js; a chart that fails says so on the console. */
export const BOOT_SCRIPT = `(function () {
  'use strict';
  var specs = JSON.parse(document.getElementById('edgefl-report-charts').textContent);
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = '#374151';
  Chart.defaults.plugins.legend.position = 'bottom';
  Chart.defaults.interaction.mode = 'index';
  Chart.defaults.interaction.intersect = false;
  specs.forEach(function (spec) {
    try {
      new Chart(document.getElementById('chart-' + spec.id), spec.config);
    } catch (error) {
      console.error('chart ' + spec.id + ' failed: ' + error);
    }
  });
})();`;

export const STYLE = `
:root { --ink: #111827; --muted: #4b5563; --line: #e5e7eb; --panel: #ffffff; --page: #f3f4f6; --good: #047857; --bad: #b91c1c; --warn: #b45309; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--page); color: var(--ink); font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 20px 48px; }
header h1 { font-size: 26px; margin: 0 0 4px; }
header .meta { color: var(--muted); margin: 0 0 14px; }
.headline { font-size: 17px; max-width: 900px; margin: 0 0 18px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(130px, 1fr)); gap: 10px; margin: 0 0 22px; padding: 0; }
.tile { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; margin: 0; }
.tile dt { color: var(--muted); font-size: 13px; }
.tile dd { margin: 2px 0 0; font-size: 18px; font-weight: 600; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(480px, 100%), 1fr)); gap: 16px; align-items: start; }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px 16px; min-width: 0; }
section.wide { grid-column: 1 / -1; }
section h2 { font-size: 17px; margin: 0 0 6px; }
section p { margin: 4px 0 10px; color: var(--muted); }
section p.empty { color: var(--ink); background: #f9fafb; border: 1px dashed #d1d5db; border-radius: 6px; padding: 14px; }
.chart { position: relative; height: 280px; }
.chart.short { height: 180px; }
.pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(300px, 100%), 1fr)); gap: 16px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; }
table.settings th { width: 42%; font-weight: 500; }
details { margin-top: 10px; }
summary { cursor: pointer; color: var(--muted); }
.scroll { max-height: 360px; overflow: auto; }
.outcome-completed { color: var(--good); font-weight: 600; }
.outcome-halted, .outcome-rolled-back { color: var(--bad); font-weight: 600; }
.outcome-in-progress { color: var(--warn); font-weight: 600; }
td.reason { word-break: break-word; }
footer { color: var(--muted); font-size: 13px; margin-top: 22px; }
@media print { body { background: #fff; } section { break-inside: avoid; } details { display: block; } }
`;

/** `'sha256-…'` for a CSP source list. */
export function cspHash(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/** JSON that is safe inside a <script> element: no `<`, `>`, `&` or line separators survive as themselves. */
export function scriptSafeJson(value: unknown): string {
  return JSON.stringify(value)
    .replaceAll('<', '\\u003c')
    .replaceAll('>', '\\u003e')
    .replaceAll('&', '\\u0026')
    .replaceAll('\u2028', '\\u2028')
    .replaceAll('\u2029', '\\u2029');
}
