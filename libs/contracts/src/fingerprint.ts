// CRC-64-AVRO, the Rabin fingerprint the Avro specification uses for single-object encoding.
// Written by hand: avsc's Type#fingerprint() only offers node:crypto hashes (MD5, SHA-256), not Rabin.
// Reference: Avro specification, "Schema Fingerprints" (the table-driven algorithm below is the spec's).

const EMPTY = 0xc15d213aa4d7a795n;
const MASK = 0xffffffffffffffffn;

const TABLE: readonly bigint[] = (() => {
  const table: bigint[] = [];
  for (let i = 0; i < 256; i++) {
    let fp = BigInt(i);
    for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (EMPTY & -(fp & 1n) & MASK);
    table.push(fp);
  }
  return table;
})();

/** CRC-64-AVRO of the bytes (of a schema's parsing canonical form), as an unsigned 64-bit bigint. */
export function rabinFingerprint64(bytes: Uint8Array | string): bigint {
  const data = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes;
  let fp = EMPTY;
  for (const b of data) fp = (fp >> 8n) ^ TABLE[Number((fp ^ BigInt(b)) & 0xffn)]!;
  return fp;
}

/** The fingerprint as the 8 little-endian bytes single-object encoding writes. */
export function fingerprintBytesLE(fp: bigint): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(fp);
  return out;
}
