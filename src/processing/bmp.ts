// A small reader for Windows BMP files (sharp's libvips build has no BMP loader):
// uncompressed 1/4/8-bit palette, 16/24/32-bit, BI_BITFIELDS masks, bottom-up or top-down.
import { QwenError } from "../errors.js";

export interface BmpImage {
  width: number;
  height: number;
  /** RGBA interleaved. */
  data: Uint8Array;
  hasAlpha: boolean;
}

export function isBmp(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d;
}

function maskShift(mask: number): { shift: number; bits: number } {
  if (mask === 0) return { shift: 0, bits: 0 };
  let shift = 0;
  while (((mask >>> shift) & 1) === 0) shift++;
  let bits = 0;
  while (((mask >>> (shift + bits)) & 1) === 1 && shift + bits < 32) bits++;
  return { shift, bits };
}

function scaleBits(v: number, bits: number): number {
  if (bits === 8) return v;
  if (bits === 0) return 0;
  return Math.round((v * 255) / ((1 << bits) - 1));
}

export function decodeBmp(b: Uint8Array, what: string): BmpImage {
  const fail = (m: string): never => {
    throw new QwenError(`${what} is not a readable BMP file: ${m}`);
  };
  if (b.length < 26) fail("file is truncated (no header)");
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dataOffset = dv.getUint32(10, true);
  const hdrSize = dv.getUint32(14, true);
  let width: number, height: number, bpp: number, compression = 0, colorsUsed = 0;
  let topDown = false;
  let paletteEntrySize = 4;
  if (hdrSize === 12) {
    width = dv.getUint16(18, true);
    height = dv.getInt16(20, true);
    bpp = dv.getUint16(24, true);
    paletteEntrySize = 3;
  } else {
    if (hdrSize < 40 || b.length < 14 + 40) fail(`unsupported header size ${hdrSize}`);
    width = dv.getInt32(18, true);
    height = dv.getInt32(22, true);
    bpp = dv.getUint16(28, true);
    compression = dv.getUint32(30, true);
    colorsUsed = dv.getUint32(46, true);
  }
  if (height < 0) {
    topDown = true;
    height = -height;
  }
  if (width <= 0 || height <= 0) throw new QwenError(`${what} has zero size (${width}x${height})`);
  if (width * height > 268402689) fail(`${width}x${height} is too large`);
  let rMask = 0, gMask = 0, bMask = 0, aMask = 0;
  if (compression === 3 || compression === 6) {
    // Masks follow a 40-byte header, or live inside a V2+ header.
    const at = 14 + 40;
    if (b.length < at + 12) fail("truncated bit masks");
    rMask = dv.getUint32(at, true);
    gMask = dv.getUint32(at + 4, true);
    bMask = dv.getUint32(at + 8, true);
    if ((hdrSize >= 56 || compression === 6) && b.length >= at + 16) aMask = dv.getUint32(at + 12, true);
  } else if (compression !== 0) {
    fail(`compression type ${compression} (RLE/JPEG/PNG inside BMP) is not supported`);
  } else if (bpp === 16) {
    rMask = 0x7c00; gMask = 0x03e0; bMask = 0x001f;
  } else if (bpp === 32) {
    rMask = 0x00ff0000; gMask = 0x0000ff00; bMask = 0x000000ff;
  }
  if (![1, 4, 8, 16, 24, 32].includes(bpp)) fail(`${bpp} bits per pixel is not supported`);
  let palette: Uint8Array | null = null;
  if (bpp <= 8) {
    const n = colorsUsed || 1 << bpp;
    const pStart = 14 + hdrSize + (compression === 3 ? 12 : compression === 6 ? 16 : 0);
    if (pStart + n * paletteEntrySize > b.length) fail("truncated palette");
    palette = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) {
      const o = pStart + i * paletteEntrySize;
      palette[i * 3] = b[o + 2]!;
      palette[i * 3 + 1] = b[o + 1]!;
      palette[i * 3 + 2] = b[o]!;
    }
  }
  const rowBytes = Math.floor((width * bpp + 31) / 32) * 4;
  if (dataOffset + rowBytes * height > b.length) fail(`pixel data is truncated (${b.length} bytes, need ${dataOffset + rowBytes * height})`);
  const out = new Uint8Array(width * height * 4);
  const r = maskShift(rMask), g = maskShift(gMask), bl = maskShift(bMask), a = maskShift(aMask);
  const hasAlpha = aMask !== 0;
  for (let y = 0; y < height; y++) {
    const srcRow = dataOffset + (topDown ? y : height - 1 - y) * rowBytes;
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      if (bpp <= 8) {
        const bitPos = x * bpp;
        const byte = b[srcRow + (bitPos >> 3)]!;
        const idx = (byte >> (8 - bpp - (bitPos & 7))) & ((1 << bpp) - 1);
        const pi = Math.min(idx, palette!.length / 3 - 1) * 3;
        out[o] = palette![pi]!;
        out[o + 1] = palette![pi + 1]!;
        out[o + 2] = palette![pi + 2]!;
        out[o + 3] = 255;
      } else if (bpp === 24) {
        const p = srcRow + x * 3;
        out[o] = b[p + 2]!;
        out[o + 1] = b[p + 1]!;
        out[o + 2] = b[p]!;
        out[o + 3] = 255;
      } else {
        const v = bpp === 16 ? dv.getUint16(srcRow + x * 2, true) : dv.getUint32(srcRow + x * 4, true);
        out[o] = scaleBits((v & rMask) >>> r.shift, r.bits);
        out[o + 1] = scaleBits((v & gMask) >>> g.shift, g.bits);
        out[o + 2] = scaleBits((v & bMask) >>> bl.shift, bl.bits);
        out[o + 3] = hasAlpha ? scaleBits((v & aMask) >>> a.shift, a.bits) : 255;
      }
    }
  }
  return { width, height, data: out, hasAlpha };
}
