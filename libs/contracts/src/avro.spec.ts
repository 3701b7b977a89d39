import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBody, encodeWithHeader, parseSchema } from './avro.js';
import { ContractError } from './errors.js';

const EMPTY = Buffer.alloc(0);

describe('avro decode fast paths', () => {
  const type = parseSchema({
    type: 'record',
    name: 'T',
    fields: [
      { name: 'a', type: 'string' },
      { name: 'b', type: 'string' },
      { name: 'id', type: { type: 'string', logicalType: 'uuid' } },
      { name: 'xs', type: { type: 'array', items: 'float' } },
      { name: 'tags', type: { type: 'map', values: 'string' } },
    ],
  });
  const roundTrip = (value: unknown) => decodeBody(encodeWithHeader(type, EMPTY, value), 0, type);

  it('the short-string cache returns exactly the encoded strings, also when slots collide and values repeat', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            a: fc.constantFrom('', 'acme', 'acmf', 'pos-00001', 'pos-00002', 'é', '\u{1F600}x'),
            b: fc.string({ maxLength: 40, unit: 'binary' }),
            id: fc.uuid(),
            xs: fc.array(fc.float({ noNaN: true }).map(Math.fround), { maxLength: 12 }),
            tags: fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 })),
          }),
          { minLength: 1, maxLength: 60 },
        ),
        (values) => {
          for (const value of values) expect(roundTrip(value)).toEqual(value);
        },
      ),
    );
  });

  it('thousands of distinct short strings (far more than the cache holds) all decode to themselves', () => {
    for (let i = 0; i < 10_000; i++) {
      const value = {
        a: `d-${i}`,
        b: `d-${i * 7}`,
        id: '91a2b3c4-d5e6-4f70-8182-93a4b5c6d7e8',
        xs: [],
        tags: {},
      };
      expect(roundTrip(value)).toEqual(value);
    }
  });

  it('a string or float block running past the end is TRUNCATED, never a partial value', () => {
    const bytes = encodeWithHeader(type, EMPTY, {
      a: 'acme',
      b: 'pos-00001',
      id: '91a2b3c4-d5e6-4f70-8182-93a4b5c6d7e8',
      xs: [0.5, 0.25, 0.125],
      tags: {},
    });
    for (let cut = 1; cut < bytes.length; cut++) {
      const error = (() => {
        try {
          decodeBody(bytes.subarray(0, cut), 0, type);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(ContractError.is(error), `cut at ${cut}`).toBe(true);
      expect((error as ContractError).code).toMatch(/TRUNCATED|MALFORMED/);
    }
  });

  it('a float array written as ints is read through the resolver (promotion), not the float fast path', () => {
    const writer = parseSchema({
      type: 'record',
      name: 'W',
      fields: [{ name: 'xs', type: { type: 'array', items: 'int' } }],
    });
    const reader = parseSchema({
      type: 'record',
      name: 'W',
      fields: [{ name: 'xs', type: { type: 'array', items: 'float' } }],
    });
    const bytes = encodeWithHeader(writer, EMPTY, { xs: [1, -2, 3] });
    expect(decodeBody(bytes, 0, reader, reader.createResolver(writer))).toEqual({ xs: [1, -2, 3] });
  });
});
