// Image decoding (PNG, JPEG with EXIF orientation, WebP, GIF first frame, TIFF, AVIF via sharp;
// BMP with our own reader) to RGB uint8, and the Qwen3-VL image pipeline:
// smart resize -> Pillow-exact bicubic -> normalise -> patchify.
import { readFile } from "node:fs/promises";
import sharp from "sharp";
import type { OutputInfo } from "sharp";
import { QwenError } from "../errors.js";
import { resizeBicubic } from "./bicubic.js";
import { patchify } from "./patchify.js";
import { smartResize, type ImageResizeOptions } from "./smart-resize.js";
import { decodeBmp, isBmp } from "./bmp.js";

/** An 8-bit RGB image, pixels interleaved row-major (length width*height*3). */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Upper bound on decoded pixels (guards against decompression bombs): 2^28, as sharp's default. */
const MAX_DECODE_PIXELS = 268402689;

/**
 * Composites 8-bit RGBA over opaque white with Pillow's integer arithmetic
 * (Image.alpha_composite of the image onto a white RGBA background, then RGB).
 */
export function compositeOverWhite(rgba: Uint8Array, width: number, height: number): Uint8Array {
  const n = width * height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const a = rgba[i * 4 + 3]!;
    if (a === 0) {
      out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = 255;
      continue;
    }
    // Background is opaque white: out alpha is 255; 7 extra bits of precision, rounded /255.
    const outa255 = a * 255 + 255 * (255 - a);
    const coef1 = Math.floor((a * 255 * 255 * 128) / outa255);
    const coef2 = 255 * 128 - coef1;
    for (let c = 0; c < 3; c++) {
      const t = rgba[i * 4 + c]! * coef1 + 255 * coef2 + (0x80 << 7);
      out[i * 3 + c] = (((t >>> 8) + t) >>> 8) >>> 7;
    }
  }
  return out;
}

function describe(source: string | undefined): string {
  return source ? `image ${source}` : "image";
}

/**
 * Decodes an encoded image (bytes) to RGB. Orientation from EXIF is applied; grey, palette
 * and CMYK become RGB; transparency is composited over white; animations give their first frame.
 */
export async function decodeImage(bytes: Uint8Array, source?: string): Promise<RgbImage> {
  const what = describe(source);
  if (bytes.length === 0) throw new QwenError(`${what} is empty (0 bytes)`);
  if (isBmp(bytes)) {
    const bmp = decodeBmp(bytes, what);
    const rgb = bmp.hasAlpha ? compositeOverWhite(bmp.data, bmp.width, bmp.height) : dropAlpha(bmp.data, bmp.width * bmp.height);
    return { width: bmp.width, height: bmp.height, data: rgb };
  }
  let raw: { data: Buffer; info: OutputInfo };
  let cmyk = false;
  try {
    // Like Pillow (and so the reference), embedded ICC profiles are not applied.
    const open = () => sharp(bytes, { failOn: "error", limitInputPixels: MAX_DECODE_PIXELS, pages: 1, autoOrient: true, ignoreIcc: true });
    const meta = await open().metadata();
    cmyk = meta.space === "cmyk";
    raw = cmyk
      ? await open().pipelineColourspace("cmyk").toColourspace("cmyk").raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true })
      : await open().toColourspace("srgb").raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    const msg = (e as Error).message;
    if (/unsupported image format/i.test(msg)) throw new QwenError(`${what} is not in a supported format (PNG, JPEG, WebP, GIF, BMP, TIFF, AVIF)`);
    throw new QwenError(`${what} cannot be decoded (corrupt or truncated?): ${msg}`);
  }
  const { width, height, channels } = raw.info;
  if (width <= 0 || height <= 0) throw new QwenError(`${what} has zero size (${width}x${height})`);
  const px = width * height;
  const src = new Uint8Array(raw.data.buffer, raw.data.byteOffset, raw.data.byteLength);
  let data: Uint8Array;
  if (cmyk && channels === 4) data = cmykToRgb(src, px);
  else if (channels === 3) data = src.slice();
  else if (channels === 4) data = compositeOverWhite(src, width, height);
  else if (channels === 1 || channels === 2) {
    // Should not happen after toColourspace("srgb"), but handle grey(+alpha) anyway.
    const rgba = new Uint8Array(px * 4);
    for (let i = 0; i < px; i++) {
      const g = src[i * channels]!;
      rgba[i * 4] = rgba[i * 4 + 1] = rgba[i * 4 + 2] = g;
      rgba[i * 4 + 3] = channels === 2 ? src[i * 2 + 1]! : 255;
    }
    data = compositeOverWhite(rgba, width, height);
  } else throw new QwenError(`${what} has ${channels} channels after conversion to sRGB; cannot make RGB`);
  return { width, height, data };
}

/** Pillow's CMYK -> RGB: (255 - K) scaled by (255 - C) / 255, rounded like its MULDIV255. */
function cmykToRgb(cmyk: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const nk = 255 - cmyk[i * 4 + 3]!;
    for (let c = 0; c < 3; c++) {
      const t = cmyk[i * 4 + c]! * nk + 128;
      out[i * 3 + c] = nk - ((t + (t >> 8)) >> 8);
    }
  }
  return out;
}

function dropAlpha(rgba: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    out[i * 3] = rgba[i * 4]!;
    out[i * 3 + 1] = rgba[i * 4 + 1]!;
    out[i * 3 + 2] = rgba[i * 4 + 2]!;
  }
  return out;
}

/** Reads and decodes an image file. */
export async function loadImageFile(path: string): Promise<RgbImage> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new QwenError(`image file not found: ${path}`);
    if (code === "EISDIR") throw new QwenError(`image path is a directory, not a file: ${path}`);
    throw new QwenError(`cannot read image file ${path}: ${(e as Error).message}`);
  }
  return decodeImage(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), path);
}

export interface ImageProcessOptions {
  minPixels?: number;
  maxPixels?: number;
}

export interface ProcessedImage {
  /** [gh*gw, 1536] row-major. */
  pixelValues: Float32Array;
  grid: [number, number, number];
  resizedHeight: number;
  resizedWidth: number;
  /** LLM tokens for this image: gh*gw/4. */
  numTokens: number;
}

/** The full image pipeline of Qwen2VLImageProcessor (PIL path) on a decoded RGB image. */
export function processImage(img: RgbImage, opts: ImageProcessOptions = {}, source?: string): ProcessedImage {
  const resizeOpts: ImageResizeOptions = { factor: 32 };
  if (opts.minPixels !== undefined) resizeOpts.minPixels = opts.minPixels;
  if (opts.maxPixels !== undefined) resizeOpts.maxPixels = opts.maxPixels;
  const [rh, rw] = smartResize(img.height, img.width, resizeOpts, describe(source));
  const resized = resizeBicubic(img.data, img.width, img.height, 3, rw, rh);
  const { pixelValues, grid } = patchify([resized], rh, rw);
  return { pixelValues, grid, resizedHeight: rh, resizedWidth: rw, numTokens: (grid[0] * grid[1] * grid[2]) / 4 };
}
