// Target sizes for images and videos (transformers' Qwen2-VL image smart_resize and Qwen3-VL
// video smart_resize), with Python's arithmetic: float64, round-half-to-even.
import { QwenError } from "../errors.js";

/** Python's round(x) for a float: nearest integer, ties to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f; // exact for doubles
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

export interface ImageResizeOptions {
  /** patch_size * merge_size (32 for Qwen3-VL). */
  factor?: number;
  /** Lower bound on H*W (preprocessor size.shortest_edge; default 65536). */
  minPixels?: number;
  /** Upper bound on H*W (preprocessor size.longest_edge; default 16777216). */
  maxPixels?: number;
}

export const IMAGE_MIN_PIXELS = 65536;
export const IMAGE_MAX_PIXELS = 16777216;
export const VIDEO_MIN_PIXELS = 4096;
export const VIDEO_MAX_PIXELS = 25165824;
export const MAX_ASPECT_RATIO = 200;

function checkDims(height: number, width: number, what: string): void {
  if (!Number.isInteger(height) || !Number.isInteger(width) || height <= 0 || width <= 0) {
    throw new QwenError(`${what} has size ${width}x${height} (width x height); both sides must be positive whole numbers of pixels`);
  }
}

function checkAspect(height: number, width: number, what: string): void {
  const r = Math.max(height, width) / Math.min(height, width);
  if (r > MAX_ASPECT_RATIO) {
    throw new QwenError(`${what} is ${width}x${height} (width x height): its aspect ratio ${r.toFixed(1)} is larger than the supported ${MAX_ASPECT_RATIO}`);
  }
}

/** Resized [height, width] of an image: multiples of `factor`, pixel count within [minPixels, maxPixels]. */
export function smartResize(height: number, width: number, opts: ImageResizeOptions = {}, what = "the image"): [number, number] {
  const factor = opts.factor ?? 32;
  const minPx = opts.minPixels ?? IMAGE_MIN_PIXELS;
  const maxPx = opts.maxPixels ?? IMAGE_MAX_PIXELS;
  checkDims(height, width, what);
  checkAspect(height, width, what);
  if (minPx > maxPx) throw new QwenError(`min_pixels (${minPx}) is larger than max_pixels (${maxPx})`);
  let hb = roundHalfEven(height / factor) * factor;
  let wb = roundHalfEven(width / factor) * factor;
  if (hb * wb > maxPx) {
    const beta = Math.sqrt((height * width) / maxPx);
    hb = Math.max(factor, Math.floor(height / beta / factor) * factor);
    wb = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (hb * wb < minPx) {
    const beta = Math.sqrt(minPx / (height * width));
    hb = Math.ceil((height * beta) / factor) * factor;
    wb = Math.ceil((width * beta) / factor) * factor;
  }
  return [hb, wb];
}

export interface VideoResizeOptions {
  factor?: number;
  temporalFactor?: number;
  /** Lower bound on T*H*W over all sampled frames (default 4096). */
  minPixels?: number;
  /** Upper bound on T*H*W over all sampled frames (default 25165824). */
  maxPixels?: number;
}

/** Resized [height, width] shared by all frames of a video of `numFrames` sampled frames. */
export function smartResizeVideo(numFrames: number, height: number, width: number, opts: VideoResizeOptions = {}, what = "the video"): [number, number] {
  const factor = opts.factor ?? 32;
  const tf = opts.temporalFactor ?? 2;
  const minPx = opts.minPixels ?? VIDEO_MIN_PIXELS;
  const maxPx = opts.maxPixels ?? VIDEO_MAX_PIXELS;
  if (numFrames < tf) {
    throw new QwenError(`${what} has ${numFrames} sampled frame(s); at least ${tf} (the temporal patch size) are needed`);
  }
  checkDims(height, width, `${what}'s frames`);
  if (height < factor || width < factor) {
    throw new QwenError(`${what}'s frames are ${width}x${height} (width x height); both sides must be at least ${factor} pixels`);
  }
  checkAspect(height, width, `${what}'s frames`);
  if (minPx > maxPx) throw new QwenError(`min_pixels (${minPx}) is larger than max_pixels (${maxPx})`);
  let hb = roundHalfEven(height / factor) * factor;
  let wb = roundHalfEven(width / factor) * factor;
  const tb = roundHalfEven(numFrames / tf) * tf;
  if (tb * hb * wb > maxPx) {
    const beta = Math.sqrt((numFrames * height * width) / maxPx);
    hb = Math.max(factor, Math.floor(height / beta / factor) * factor);
    wb = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (tb * hb * wb < minPx) {
    const beta = Math.sqrt(minPx / (numFrames * height * width));
    hb = Math.ceil((height * beta) / factor) * factor;
    wb = Math.ceil((width * beta) / factor) * factor;
  }
  return [hb, wb];
}
