// Headless Chromium for the report's browser test and its screenshot: the Debian package driven by
// playwright-core (no browser download). Written in erasable TypeScript so Node's type stripping runs it too.
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';

export const CHROMIUM = process.env['EDGEFL_CHROMIUM'] ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
];

/** A running Chromium, or why there is none (not installed, or it does not start). */
export async function launchChromium(): Promise<{ browser: Browser } | { why: string }> {
  if (!existsSync(CHROMIUM)) {
    return { why: `${CHROMIUM} is not installed (Debian: apt-get install chromium chromium-driver)` };
  }
  const { chromium } = await import('playwright-core');
  try {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    return { browser };
  } catch (error) {
    return { why: `${CHROMIUM} does not start: ${String((error as Error).message).split('\n')[0]}` };
  }
}

/** The few browser globals the page-side checks use (this project compiles without the DOM library). */
interface PageCanvas {
  readonly id: string;
  readonly width: number;
  readonly height: number;
  getContext(
    kind: '2d',
  ): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
}
interface PageGlobals {
  requestAnimationFrame(callback: () => void): number;
  readonly document: { querySelectorAll(selector: 'canvas'): Iterable<PageCanvas> };
  readonly Chart?: { getChart(canvas: PageCanvas): unknown };
}

export interface CanvasState {
  readonly id: string;
  readonly width: number;
  readonly height: number;
  /** Pixels with any opacity: 0 means the chart drew nothing. */
  readonly paintedPixels: number;
  /** Chart.js owns the canvas. */
  readonly hasChart: boolean;
}

export interface OpenedReport {
  readonly page: Page;
  /** console.error/console.warn lines, uncaught page errors and CSP violations. */
  readonly problems: string[];
  /** Every request other than the report file itself. */
  readonly requests: string[];
  /** Messages of alert/confirm/prompt dialogs (an injected script would open one). */
  readonly dialogs: string[];
  readonly canvases: CanvasState[];
}

/** Opens a report file and reads back what every canvas drew once the page settled. */
export async function openReport(
  browser: Browser,
  file: string,
  viewport = { width: 1280, height: 900 },
): Promise<OpenedReport> {
  const page = await browser.newPage({ viewport });
  const url = pathToFileURL(file).href;
  const problems: string[] = [];
  const requests: string[] = [];
  const dialogs: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  page.on('request', (request) => {
    if (request.url() !== url) requests.push(request.url());
  });
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  await page.goto(url, { waitUntil: 'load' });
  // two animation frames: Chart.js's resize observer re-renders once after layout
  await page.evaluate(() => {
    const g = globalThis as unknown as PageGlobals;
    return new Promise<void>((resolve) =>
      g.requestAnimationFrame(() => g.requestAnimationFrame(() => resolve())),
    );
  });
  const canvases = await page.evaluate(() => {
    const g = globalThis as unknown as PageGlobals;
    return [...g.document.querySelectorAll('canvas')].map((canvas) => {
      const context = canvas.getContext('2d');
      let paintedPixels = 0;
      if (context && canvas.width > 0 && canvas.height > 0) {
        const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) paintedPixels++;
      }
      return {
        id: canvas.id,
        width: canvas.width,
        height: canvas.height,
        paintedPixels,
        hasChart: g.Chart?.getChart(canvas) !== undefined,
      };
    });
  });
  return { page, problems, requests, dialogs, canvases };
}
