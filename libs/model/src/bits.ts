/** LSB-first bit packing for the delta codec's entropy-light streams (Rice codes, payload bits). */
export class BitWriter {
  #out: Uint8Array;
  #pos = 0;
  #acc = 0;
  #accBits = 0;

  constructor(capacityBytes: number) {
    this.#out = new Uint8Array(Math.max(16, capacityBytes));
  }

  #grow(): void {
    const bigger = new Uint8Array(this.#out.byteLength * 2);
    bigger.set(this.#out);
    this.#out = bigger;
  }

  /** Writes the low `bits` (0–32) bits of `value`. */
  write(value: number, bits: number): void {
    let v = value >>> 0;
    let left = bits;
    while (left > 0) {
      const take = Math.min(left, 16);
      this.#acc |= (v & ((1 << take) - 1)) << this.#accBits;
      v >>>= take;
      left -= take;
      this.#accBits += take;
      while (this.#accBits >= 8) {
        if (this.#pos >= this.#out.byteLength) this.#grow();
        this.#out[this.#pos++] = this.#acc & 255;
        this.#acc >>>= 8;
        this.#accBits -= 8;
      }
    }
  }

  /** `count` one bits then a zero bit. */
  unary(count: number): void {
    let left = count;
    while (left >= 16) {
      this.write(0xffff, 16);
      left -= 16;
    }
    this.write((1 << left) - 1, left + 1);
  }

  /** The bytes written, the last one zero-padded. */
  finish(): Uint8Array {
    if (this.#accBits > 0) {
      if (this.#pos >= this.#out.byteLength) this.#grow();
      this.#out[this.#pos++] = this.#acc & 255;
      this.#acc = 0;
      this.#accBits = 0;
    }
    return this.#out.subarray(0, this.#pos);
  }
}

/** Reads what BitWriter wrote; throws RangeError past the end. */
export class BitReader {
  readonly #bytes: Uint8Array;
  #pos = 0;
  #acc = 0;
  #accBits = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  /** Bytes consumed so far (whole bytes, including a partly read last one). */
  get bytesRead(): number {
    return this.#pos;
  }

  read(bits: number): number {
    let value = 0;
    let shift = 0;
    let left = bits;
    while (left > 0) {
      const take = Math.min(left, 16);
      while (this.#accBits < take) {
        if (this.#pos >= this.#bytes.byteLength) throw new RangeError('bit stream is truncated');
        this.#acc |= this.#bytes[this.#pos++]! << this.#accBits;
        this.#accBits += 8;
      }
      value += (this.#acc & ((1 << take) - 1)) * 2 ** shift;
      this.#acc >>>= take;
      this.#accBits -= take;
      shift += take;
      left -= take;
    }
    return value;
  }

  /** Counts one bits up to the next zero bit (at most `max`). */
  unary(max: number): number {
    let count = 0;
    while (this.read(1) === 1) if (++count > max) throw new RangeError('unary code is too long');
    return count;
  }
}
