import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assertValid, decodeBody, encodeWithHeader, illFormedStringPaths, parseSchema } from './avro.js';
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

describe('assertValid refuses ill-formed strings wherever a schema can hold one', () => {
  // Every place a string can sit: a field, a nested record, array items, map keys and values, a nullable union,
  // a union of records, a recursive type; floats and bytes beside them hold none.
  const type = parseSchema({
    type: 'record',
    name: 'Outer',
    fields: [
      { name: 's', type: 'string' },
      { name: 'xs', type: { type: 'array', items: 'float' } },
      { name: 'inner', type: { type: 'record', name: 'Inner', fields: [{ name: 't', type: 'string' }] } },
      { name: 'names', type: { type: 'array', items: 'string' } },
      { name: 'tags', type: { type: 'map', values: 'string' } },
      { name: 'counts', type: { type: 'map', values: 'long' } },
      { name: 'maybe', type: ['null', 'string'] },
      { name: 'either', type: ['null', 'Inner'] },
      {
        name: 'list',
        type: [
          'null',
          {
            type: 'record',
            name: 'Node',
            fields: [
              { name: 'v', type: 'string' },
              { name: 'next', type: ['null', 'Node'] },
            ],
          },
        ],
      },
    ],
  });
  const text = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('a\ud800', '\udc00', 'ok\u{1F680}'));
  const node: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
    node: fc.record({ v: text, next: fc.oneof({ depthSize: 'small' }, fc.constant(null), tie('node')) }),
  })).node;
  const value = fc.record({
    s: text,
    xs: fc.array(fc.float({ noNaN: true }).map(Math.fround), { maxLength: 4 }),
    inner: fc.record({ t: text }),
    names: fc.array(text, { maxLength: 3 }),
    tags: fc.dictionary(text, text, { maxKeys: 3 }),
    counts: fc.dictionary(text, fc.integer(), { maxKeys: 3 }),
    maybe: fc.option(text, { nil: null }),
    either: fc.option(fc.record({ t: text }), { nil: null }),
    list: fc.option(node, { nil: null }),
  });

  it('throws exactly when some string (or map key) is ill-formed, naming the same paths the slow walk finds', () => {
    fc.assert(
      fc.property(value, (v) => {
        const expected = illFormedStringPaths(v);
        const error = ((): unknown => {
          try {
            assertValid(type, v, 'Outer');
            return null;
          } catch (e) {
            return e;
          }
        })();
        if (expected.length === 0) return error === null;
        return error instanceof ContractError && JSON.stringify(error.paths) === JSON.stringify(expected);
      }),
      { numRuns: 2000 },
    );
  });
});
