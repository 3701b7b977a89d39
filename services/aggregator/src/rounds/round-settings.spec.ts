import { describe, expect, it } from 'vitest';
import { StartRoundRequest, toRoundSettings } from './round-settings.js';

const NOW = 1_000_000;
const parse = (over: Record<string, unknown> = {}) =>
  StartRoundRequest.parse({
    tenant: 't',
    modelId: 'm',
    baseVersion: 1,
    selectedDevices: ['a', 'b', 'c', 'd'],
    quorum: 3,
    deadline: NOW + 60_000,
    ...over,
  });
const codeOf = (over: Record<string, unknown>) => {
  try {
    toRoundSettings(parse(over), NOW, 1e-5);
    return null;
  } catch (error) {
    return (error as { details?: { code?: string } }).details?.code ?? 'no code';
  }
};

describe('toRoundSettings', () => {
  it('turns a fractional quorum into a count of the selection (rounded up) and fills the defaults', () => {
    const s = toRoundSettings(parse({ quorum: 0.6 }), NOW, 1e-5);
    expect(s.quorum).toBe(3);
    expect(s.strategy).toBe('fedavg');
    expect(s.dp).toEqual({ mode: 'none', clipNorm: 0, noiseMultiplier: 0, delta: 1e-5, samplingRate: 1 });
    expect(s.training).toEqual({ localEpochs: 1, batchSize: 32, learningRate: 0.01, proximalMu: 0 });
  });

  it('carries FedProx μ to the devices in strategyParams and the rule parameters to libs/fl', () => {
    const s = toRoundSettings(
      parse({
        training: { proximalMu: 0.1 },
        strategy: 'multi-krum',
        strategyParams: { f: 1, m: 2, other: 3 },
      }),
      NOW,
      1e-5,
    );
    expect(s.strategyParams).toEqual({ f: 1, m: 2, other: 3, proximalMu: 0.1 });
    expect(s.ruleParams).toEqual({ f: 1, m: 2 });
  });

  it('refuses impossible settings with a code', () => {
    expect(codeOf({ quorum: 5 })).toBe('quorum-above-selection');
    expect(codeOf({ quorum: 2.5 })).toBe('bad-quorum');
    expect(codeOf({ selectedDevices: ['a', 'a', 'b'] })).toBe('duplicate-devices');
    expect(codeOf({ deadline: NOW })).toBe('deadline-in-past');
    expect(codeOf({ strategy: 'fedsgd' })).toBe('unknown-strategy');
    expect(codeOf({ strategy: 'trimmed-mean' })).toBe('missing-strategy-param');
    expect(codeOf({ dp: { mode: 'local', clipNorm: 1 } })).toBe('dp-needs-noise');
    expect(codeOf({ dp: { mode: 'central', noiseMultiplier: 1 } })).toBe('dp-needs-clip-norm');
    expect(codeOf({ strategy: 'median', dp: { mode: 'central', clipNorm: 1, noiseMultiplier: 1 } })).toBe(
      'central-dp-needs-fedavg',
    );
    expect(codeOf({})).toBeNull();
  });

  it('rejects malformed bodies in the schema', () => {
    expect(StartRoundRequest.safeParse({ tenant: 't' }).success).toBe(false);
    expect(() => parse({ quorum: -1 })).toThrow();
    expect(() => parse({ unknownField: 1 })).toThrow();
  });
});
