// kafkajs's log lines onto the service's logger, at the level they deserve. kafkajs logs every protocol error of a
// response at ERROR, including REBALANCE_IN_PROGRESS on the heartbeat of each member whenever the group rebalances
// (a member joined or left: normal operation), so those go out as info; everything else keeps its level.
import kafkajs from 'kafkajs';
import type { LogEntry, logCreator } from 'kafkajs';

const { logLevel } = kafkajs;

/** Where the bus logs (the service's logger; Nest's Logger and pino both fit through a small adapter). */
export interface BusLogger {
  error(message: string, fields: Record<string, unknown>): void;
  warn(message: string, fields: Record<string, unknown>): void;
  info(message: string, fields: Record<string, unknown>): void;
  debug(message: string, fields: Record<string, unknown>): void;
}

/** Errors that are part of a normal rebalance (a member joined or left), not a failure. */
const REBALANCE = [/the group is rebalancing/i, /REBALANCE_IN_PROGRESS/];

/** True when a kafkajs log entry only reports a normal group rebalance. */
export function isRebalanceNoise(entry: Pick<LogEntry, 'log'>): boolean {
  const { message, error, type } = entry.log as { message?: unknown; error?: unknown; type?: unknown };
  const texts = [message, error, type].filter((t): t is string => typeof t === 'string');
  return texts.some((t) => REBALANCE.some((r) => r.test(t)));
}

/** A kafkajs logCreator writing to `logger` (never record values: kafkajs does not log them). */
export function kafkaLogCreator(logger: BusLogger): logCreator {
  return () => (entry: LogEntry) => {
    const {
      message,
      timestamp: _timestamp,
      logger: _name,
      ...fields
    } = entry.log as LogEntry['log'] & {
      logger?: unknown;
    };
    const line = String(message);
    const context = { ...fields, namespace: entry.namespace };
    if (entry.level === logLevel.ERROR || entry.level === logLevel.WARN) {
      if (isRebalanceNoise(entry)) return logger.info(line, context);
      return entry.level === logLevel.ERROR ? logger.error(line, context) : logger.warn(line, context);
    }
    if (entry.level === logLevel.INFO) return logger.info(line, context);
    logger.debug(line, context);
  };
}

/** The default logger: warnings and errors as JSON lines on stderr, info and debug dropped. */
export const stderrBusLogger: BusLogger = {
  error: (message, fields) =>
    process.stderr.write(`${JSON.stringify({ level: 'error', msg: message, ...fields })}\n`),
  warn: (message, fields) =>
    process.stderr.write(`${JSON.stringify({ level: 'warn', msg: message, ...fields })}\n`),
  info: () => undefined,
  debug: () => undefined,
};
