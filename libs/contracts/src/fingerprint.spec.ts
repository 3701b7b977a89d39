import { describe, expect, it } from 'vitest';
import { canonicalForm, parseSchema } from './avro.js';
import { rabinFingerprint64 } from './fingerprint.js';

// Vectors from the Avro project (share/test/data/schema-tests.txt): input, parsing canonical form, fingerprint.
const VECTORS: Array<[string, string, bigint]> = [
  ['"null"', '"null"', 7195948357588979594n],
  ['{"type":"boolean"}', '"boolean"', -6970731678124411036n],
  ['"int"', '"int"', 8247732601305521295n],
  [
    '{"type":"fixed","name":"foo","size":15}',
    '{"name":"foo","type":"fixed","size":15}',
    1756455273707447556n,
  ],
  [
    '{"type":"record","name":"foo","doc":"x","fields":[{"name":"f1","type":"boolean","default":true}]}',
    '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}',
    7843277075252814651n,
  ],
  [
    '{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}',
    '{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}',
    -1759257747318642341n,
  ],
];

describe('CRC-64-AVRO fingerprint', () => {
  it.each(VECTORS)('%s', (input, canonical, expected) => {
    expect(canonicalForm(parseSchema(input))).toBe(canonical);
    expect(BigInt.asIntN(64, rabinFingerprint64(canonical))).toBe(expected);
  });
});
