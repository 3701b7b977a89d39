// Screenshot of a demo report for the README:
//   npx nx run cli:build && node tools/cli/scripts/report-screenshot.ts [summary.json] [out.png]
// (defaults: the hand-written fixture summary, docs/images/demo-report.png). Needs /usr/bin/chromium.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSummary, writeReport } from '../dist/report/index.js';
import { launchChromium, openReport } from '../test/chromium.ts';

const workspace = fileURLToPath(new URL('../../..', import.meta.url));
const input = process.argv[2] ?? join(workspace, 'tools/cli/src/report/fixtures/demo-summary.json');
const output = process.argv[3] ?? join(workspace, 'docs/images/demo-report.png');

const launched = await launchChromium();
if (!('browser' in launched)) {
  console.error(`report-screenshot: ${launched.why}`);
  process.exit(1);
}
const dir = mkdtempSync(join(tmpdir(), 'edgefl-report-'));
try {
  const html = join(dir, 'report.html');
  await writeReport(await readSummary(input), html);
  const opened = await openReport(launched.browser, html, { width: 1280, height: 900 });
  if (opened.problems.length > 0)
    throw new Error(`the report logged problems: ${opened.problems.join('; ')}`);
  await opened.page.screenshot({ path: output, fullPage: true });
  console.log(`${relative(process.cwd(), output)}: ${opened.canvases.length} charts`);
} finally {
  await launched.browser.close();
  rmSync(dir, { recursive: true, force: true });
}
