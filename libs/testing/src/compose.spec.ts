import { describe, expect, it } from 'vitest';
import { composeEnvironment, interpolateCompose } from './compose.js';

describe('compose interpolation', () => {
  it('follows compose semantics for defaults and escapes', () => {
    const env = { SET: 'x', EMPTY: '' };
    expect(interpolateCompose('${SET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${UNSET} $$HOME', env)).toBe(
      'x d  d  $HOME',
    );
  });

  it('reads list and map environments alike', () => {
    expect(composeEnvironment({ environment: ['A=1', 'B=x=y', 'C'] })).toEqual({ A: '1', B: 'x=y', C: '' });
    expect(composeEnvironment({ environment: { A: 1, B: true, C: null } })).toEqual({
      A: '1',
      B: 'true',
      C: '',
    });
  });
});
