export { renderReport, reportCharts } from './render.js';
export { readSummary, parseSummary, demoSummarySchema } from './read-summary.js';
export { writeReport } from './write-report.js';
