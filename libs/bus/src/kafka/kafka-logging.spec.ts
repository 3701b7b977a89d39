// kafkajs's levels onto the service logger (a rebalance is info), and the TimeoutNegativeWarning fix in kafkajs's
// request queue (patches/kafkajs+2.2.4.patch, applied by `npm ci`).
import { createRequire } from 'node:module';
import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { kafkaLogCreator, type BusLogger } from './kafka-logging.js';

const { logLevel } = kafkajs;

function capture(): { logger: BusLogger; lines: Array<[string, string, Record<string, unknown>]> } {
  const lines: Array<[string, string, Record<string, unknown>]> = [];
  const at = (level: string) => (message: string, fields: Record<string, unknown>) =>
    void lines.push([level, message, fields]);
  return { logger: { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') }, lines };
}

describe('kafkajs logs on the service logger', () => {
  it('logs a normal rebalance at info and real errors at error, keeping the other levels', () => {
    const { logger, lines } = capture();
    const log = kafkaLogCreator(logger)(logLevel.INFO);
    const entry = (level: number, message: string, extra: Record<string, unknown> = {}) =>
      log({ namespace: 'Connection', level, label: '', log: { message, timestamp: 'now', ...extra } });
    entry(logLevel.ERROR, 'Response Heartbeat(key: 12, version: 3)', {
      error: 'The group is rebalancing, so a rejoin is needed',
      groupId: 'registry',
    });
    entry(logLevel.WARN, 'The group is rebalancing, re-joining', { groupId: 'registry' });
    entry(logLevel.ERROR, 'Crash: KafkaJSNonRetriableError', {
      error: 'Cannot read properties of undefined',
    });
    entry(logLevel.WARN, 'Consumer group received unsubscribed topics');
    entry(logLevel.INFO, 'Consumer has joined the group');
    entry(logLevel.DEBUG, 'Request Fetch');
    expect(lines.map(([level, message]) => [level, message])).toEqual([
      ['info', 'Response Heartbeat(key: 12, version: 3)'],
      ['info', 'The group is rebalancing, re-joining'],
      ['error', 'Crash: KafkaJSNonRetriableError'],
      ['warn', 'Consumer group received unsubscribed topics'],
      ['info', 'Consumer has joined the group'],
      ['debug', 'Request Fetch'],
    ]);
    expect(lines[0]![2]).toMatchObject({ namespace: 'Connection', groupId: 'registry' });
    expect(lines[0]![2]).not.toHaveProperty('timestamp');
  });
});

describe("kafkajs's request queue under Node 24", () => {
  it('schedules no timer (and so no negative delay) when nothing is pending and nothing is throttled', () => {
    const require = createRequire(import.meta.url);
    const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as new (options: object) => {
      scheduleCheckPendingRequests(): void;
      throttleCheckTimeoutId: NodeJS.Timeout | null;
      pending: unknown[];
      throttledUntil: number;
    };
    const noop = () => undefined;
    const queue = new RequestQueue({
      maxInFlightRequests: 1,
      requestTimeout: 1_000,
      enforceRequestTimeout: false,
      clientId: 'test',
      broker: 'b:9092',
      logger: { namespace: () => ({ debug: noop, info: noop, warn: noop, error: noop }) },
    });
    expect(queue.throttledUntil - Date.now()).toBeLessThan(0); // what made the delay negative
    queue.scheduleCheckPendingRequests();
    expect(queue.throttleCheckTimeoutId).toBeNull();
  });
});
