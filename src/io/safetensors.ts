// Reader for the safetensors format: 8-byte little-endian header length, a JSON header,
// then one contiguous byte buffer. Tensors are read on demand with positioned reads, so a
// multi-GB shard is never held in one buffer.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { QwenError } from "../errors.js";

export { DTYPE_BYTES, floatToBf16, halfToFloat, toFloat32, type SafeDType } from "./dtypes.js";
import { DTYPE_BYTES, toFloat32, type SafeDType } from "./dtypes.js";

export interface TensorInfo {
  readonly name: string;
  readonly dtype: SafeDType;
  readonly shape: readonly number[];
  /** Absolute byte offset in the file. */
  readonly offset: number;
  readonly byteLength: number;
}

const MAX_HEADER = 100 * 1024 * 1024;

export class SafetensorsFile {
  readonly tensors = new Map<string, TensorInfo>();
  readonly metadata: Record<string, string> = {};
  private fd: number | null;

  private constructor(readonly path: string, fd: number, readonly fileSize: number) {
    this.fd = fd;
  }

  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (e) {
      throw new QwenError(`cannot open safetensors file ${path}: ${(e as Error).message}`);
    }
    try {
      const size = fstatSync(fd).size;
      const f = new SafetensorsFile(path, fd, size);
      f.parseHeader();
      return f;
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  private fail(msg: string): never {
    throw new QwenError(`${this.path}: ${msg}`);
  }

  private parseHeader(): void {
    if (this.fileSize < 8) this.fail(`file is truncated: ${this.fileSize} bytes, a safetensors file needs at least an 8-byte header length`);
    const lenBuf = Buffer.alloc(8);
    readSync(this.fd!, lenBuf, 0, 8, 0);
    const n = lenBuf.readBigUInt64LE(0);
    if (n > BigInt(MAX_HEADER)) this.fail(`header length ${n} is larger than the ${MAX_HEADER}-byte limit (not a safetensors file?)`);
    const headerLen = Number(n);
    if (8 + headerLen > this.fileSize) this.fail(`file is truncated: header says ${headerLen} header bytes but the file has ${this.fileSize - 8} after the length`);
    const hb = Buffer.alloc(headerLen);
    readSync(this.fd!, hb, 0, headerLen, 8);
    let header: unknown;
    try {
      header = JSON.parse(hb.toString("utf8"));
    } catch (e) {
      this.fail(`header is not valid JSON: ${(e as Error).message}`);
    }
    if (header === null || typeof header !== "object" || Array.isArray(header)) this.fail("header is not a JSON object");
    const dataStart = 8 + headerLen;
    const dataLen = this.fileSize - dataStart;
    const spans: { name: string; begin: number; end: number }[] = [];
    for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
      if (name === "__metadata__") {
        if (raw && typeof raw === "object") Object.assign(this.metadata, raw);
        continue;
      }
      const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (!e || typeof e !== "object") this.fail(`tensor ${name}: header entry is not an object`);
      if (typeof e.dtype !== "string" || !(e.dtype in DTYPE_BYTES)) {
        this.fail(`tensor ${name}: unknown dtype ${JSON.stringify(e.dtype)} (expected one of ${Object.keys(DTYPE_BYTES).join(", ")})`);
      }
      const dtype = e.dtype as SafeDType;
      if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
        this.fail(`tensor ${name}: shape ${JSON.stringify(e.shape)} is not a list of non-negative integers`);
      }
      const shape = e.shape as number[];
      const offs = e.data_offsets;
      if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0) || offs[1] < offs[0]) {
        this.fail(`tensor ${name}: data_offsets ${JSON.stringify(offs)} must be [begin, end] with 0 <= begin <= end`);
      }
      const [begin, end] = offs as [number, number];
      const numel = shape.reduce((a, b) => a * b, 1);
      const want = numel * DTYPE_BYTES[dtype];
      if (end - begin !== want) {
        this.fail(`tensor ${name}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${dtype} ${JSON.stringify(shape)} needs ${want}`);
      }
      if (end > dataLen) {
        this.fail(`tensor ${name}: data_offsets end ${end} is past the end of the data (${dataLen} bytes; file truncated?)`);
      }
      spans.push({ name, begin, end });
      this.tensors.set(name, { name, dtype, shape, offset: dataStart + begin, byteLength: end - begin });
    }
    spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
    for (let i = 1; i < spans.length; i++) {
      const p = spans[i - 1]!, c = spans[i]!;
      if (c.begin < p.end) this.fail(`tensors ${p.name} [${p.begin}, ${p.end}) and ${c.name} [${c.begin}, ${c.end}) overlap`);
    }
    // Like the reference reader: the data buffer is indexed without holes, from offset 0.
    let expect = 0;
    for (const sp of spans) {
      if (sp.begin !== expect) {
        this.fail(`tensor ${sp.name} is misaligned: it starts at data offset ${sp.begin} but the previous tensor ends at ${expect} (the data buffer must be indexed without holes)`);
      }
      expect = sp.end;
    }
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) this.fail(`no tensor named ${name}`);
    return t;
  }

  /** Reads the raw bytes of a tensor into `dst` (or a new buffer). */
  readBytes(name: string, dst?: Uint8Array): Uint8Array {
    const t = this.info(name);
    if (this.fd === null) this.fail("file is closed");
    const out = dst ?? new Uint8Array(t.byteLength);
    if (out.byteLength < t.byteLength) this.fail(`tensor ${name}: destination has ${out.byteLength} bytes, need ${t.byteLength}`);
    let done = 0;
    // readSync is limited to 2 GiB per call.
    while (done < t.byteLength) {
      const chunk = Math.min(t.byteLength - done, 1 << 30);
      const got = readSync(this.fd, out, done, chunk, t.offset + done);
      if (got <= 0) this.fail(`tensor ${name}: unexpected end of file after ${done} of ${t.byteLength} bytes`);
      done += got;
    }
    return out;
  }

  /** Reads dst.byteLength bytes of a tensor starting at byteOffset inside it. */
  readRange(name: string, byteOffset: number, dst: Uint8Array): void {
    const t = this.info(name);
    if (this.fd === null) this.fail("file is closed");
    if (byteOffset < 0 || byteOffset + dst.byteLength > t.byteLength) {
      this.fail(`tensor ${name}: range [${byteOffset}, ${byteOffset + dst.byteLength}) is outside its ${t.byteLength} bytes`);
    }
    let done = 0;
    while (done < dst.byteLength) {
      const chunk = Math.min(dst.byteLength - done, 1 << 30);
      const got = readSync(this.fd, dst, done, chunk, t.offset + byteOffset + done);
      if (got <= 0) this.fail(`tensor ${name}: unexpected end of file`);
      done += got;
    }
  }

  /** Float tensors as Float32Array (bf16/f16 widened exactly). */
  readFloat32(name: string): Float32Array {
    const t = this.info(name);
    return toFloat32(t.dtype, this.readBytes(name), `${this.path}: tensor ${name}`);
  }

  /** Integer tensors as plain numbers (values must fit a double exactly). */
  readInts(name: string): number[] {
    const t = this.info(name);
    const b = this.readBytes(name);
    const out: number[] = [];
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const n = t.byteLength / DTYPE_BYTES[t.dtype];
    for (let i = 0; i < n; i++) {
      switch (t.dtype) {
        case "I64": out.push(Number(dv.getBigInt64(i * 8, true))); break;
        case "U64": out.push(Number(dv.getBigUint64(i * 8, true))); break;
        case "I32": out.push(dv.getInt32(i * 4, true)); break;
        case "U32": out.push(dv.getUint32(i * 4, true)); break;
        case "I16": out.push(dv.getInt16(i * 2, true)); break;
        case "U16": out.push(dv.getUint16(i * 2, true)); break;
        case "I8": out.push(dv.getInt8(i)); break;
        case "U8": case "BOOL": out.push(dv.getUint8(i)); break;
        default: this.fail(`tensor ${name}: dtype ${t.dtype} is not an integer type`);
      }
    }
    return out;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}


/** Writes a safetensors file (used for tests, sharding tools and generated checkpoints). */
export function encodeSafetensors(
  tensors: { name: string; dtype: SafeDType; shape: readonly number[]; data: Uint8Array }[],
  metadata?: Record<string, string>,
): Uint8Array[] {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.data.byteLength] };
    off += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  // Pad so the data section starts 8-byte aligned, as the reference writer does.
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += " ";
  const hb = Buffer.from(json, "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hb.byteLength));
  return [len, hb, ...tensors.map((t) => t.data)];
}
