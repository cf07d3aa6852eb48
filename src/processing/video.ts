// Videos: a file decoded with ffmpeg, a folder of frame images, or frames in memory; frame
// sampling, video smart resize over T x H x W, bicubic resize, temporal padding, patchify and
// the per-temporal-patch timestamps (transformers Qwen3VLVideoProcessor + Qwen3VLProcessor).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { extname, join } from "node:path";
import { QwenError } from "../errors.js";
import { resizeBicubic } from "./bicubic.js";
import { DEFAULT_VIDEO_FPS, sampleFrameIndices, type SamplingOptions } from "./frame-sampling.js";
import { loadImageFile, type RgbImage } from "./image.js";
import { patchify, TEMPORAL_PATCH_SIZE, VIDEO_NORMALIZE_LUT } from "./patchify.js";
import { smartResizeVideo } from "./smart-resize.js";
import { calculateTimestamps, timestampText } from "./timestamps.js";

/** A video whose frames can be read on demand. */
export interface VideoSource {
  /** Name for messages (path). */
  readonly name: string;
  readonly totalFrames: number;
  /** Native frame rate; null when unknown (24 is then assumed). */
  readonly fps: number | null;
  readonly width: number;
  readonly height: number;
  /** Decodes the frames at `indices` (ascending, may repeat), in that order. */
  readFrames(indices: readonly number[]): Promise<RgbImage[]>;
}

export interface VideoProcessOptions extends SamplingOptions {
  /** Lower bound on T*H*W (default 4096). */
  minPixels?: number;
  /** Upper bound on T*H*W (default 25165824). */
  maxPixels?: number;
  /** false: use every frame as given (already sampled); default true. */
  sampleFrames?: boolean;
}

export interface ProcessedVideo {
  /** [gt*gh*gw, 1536] row-major. */
  pixelValues: Float32Array;
  grid: [number, number, number];
  /** Original indices of the sampled frames. */
  frameIndices: number[];
  /** Frame rate used for the timestamps. */
  fps: number;
  /** Seconds of each temporal patch. */
  timestamps: number[];
  /** "<t seconds>" for each temporal patch. */
  timestampStrings: string[];
  resizedHeight: number;
  resizedWidth: number;
  /** LLM tokens per temporal patch: gh*gw/4. */
  tokensPerFrame: number;
}

/** Frames already in memory (all the same size), e.g. from a caller's own decoder. */
export function framesSource(frames: readonly RgbImage[], fps: number | null, name = "video"): VideoSource {
  if (frames.length === 0) throw new QwenError(`${name} has no frames`);
  const { width, height } = frames[0]!;
  frames.forEach((f, i) => {
    if (f.width !== width || f.height !== height) throw new QwenError(`${name}: frame ${i} is ${f.width}x${f.height}, frame 0 is ${width}x${height}; all frames must have the same size`);
  });
  return { name, totalFrames: frames.length, fps, width, height, readFrames: async (idx) => idx.map((i) => frames[i]!) };
}

const FRAME_EXTS = new Set([".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".avif"]);

/**
 * A folder of frame images, in name order (natural order: frame_2 before frame_10). Its frame
 * rate is `fps` if given, else `fps` from a video.json in the folder, else unknown.
 */
export async function folderSource(dir: string, fps?: number): Promise<VideoSource> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new QwenError(`cannot read video frame folder ${dir}: ${(e as Error).message}`);
  }
  const frames = names.filter((n) => FRAME_EXTS.has(extname(n).toLowerCase())).sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  if (frames.length === 0) throw new QwenError(`video frame folder ${dir} holds no frame images (${[...FRAME_EXTS].join(", ")})`);
  let rate: number | null = fps ?? null;
  const meta = join(dir, "video.json");
  if (rate === null && existsSync(meta)) {
    let v: unknown;
    try {
      v = JSON.parse(readFileSync(meta, "utf8"));
    } catch (e) {
      throw new QwenError(`${meta} is not valid JSON: ${(e as Error).message}`);
    }
    const f = v && typeof v === "object" ? (v as { fps?: unknown }).fps : undefined;
    if (f !== undefined && f !== null) {
      if (typeof f !== "number" || !(f > 0)) throw new QwenError(`${meta}: fps must be a positive number, got ${JSON.stringify(f)}`);
      rate = f;
    }
  }
  const first = await loadImageFile(join(dir, frames[0]!));
  const cache = new Map<number, RgbImage>([[0, first]]);
  return {
    name: dir,
    totalFrames: frames.length,
    fps: rate,
    width: first.width,
    height: first.height,
    async readFrames(indices) {
      const out: RgbImage[] = [];
      for (const i of indices) {
        let img = cache.get(i);
        if (!img) {
          const p = join(dir, frames[i]!);
          img = await loadImageFile(p);
          if (img.width !== first.width || img.height !== first.height) {
            throw new QwenError(`video frame ${p} is ${img.width}x${img.height} but ${frames[0]} is ${first.width}x${first.height}; all frames must have the same size`);
          }
          cache.set(i, img);
        }
        out.push(img);
      }
      return out;
    },
  };
}

// ---------------------------------------------------------------------------------- ffmpeg

let ffmpegPath: string | null | undefined;

/**
 * The ffmpeg binary: $QWEN3VL_FFMPEG, else the one shipped by the npm package
 * @ffmpeg-installer/ffmpeg, else `ffmpeg` on the PATH; null when none works.
 */
export function findFfmpeg(): string | null {
  if (ffmpegPath !== undefined) return ffmpegPath;
  const candidates: string[] = [];
  if (process.env["QWEN3VL_FFMPEG"]) candidates.push(process.env["QWEN3VL_FFMPEG"]);
  try {
    const req = createRequire(import.meta.url);
    const mod = req("@ffmpeg-installer/ffmpeg") as { path?: string };
    if (mod.path) candidates.push(mod.path);
  } catch {
    // package absent or no binary for this platform
  }
  candidates.push("ffmpeg");
  for (const c of candidates) {
    const r = spawnSync(c, ["-version"], { stdio: ["ignore", "pipe", "ignore"], timeout: 20000 });
    if (r.status === 0) return (ffmpegPath = c);
  }
  return (ffmpegPath = null);
}

function requireFfmpeg(file: string): string {
  const f = findFfmpeg();
  if (!f) {
    throw new QwenError(
      `cannot decode video ${file}: no ffmpeg found (install the npm package @ffmpeg-installer/ffmpeg, put ffmpeg on the PATH, or set QWEN3VL_FFMPEG); a folder of frame images works without it`,
    );
  }
  return f;
}

function run(bin: string, args: string[], collectStdout: boolean, onData?: (b: Buffer) => void): Promise<{ code: number | null; stderr: string; stdout: Buffer }> {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let err = "";
    p.stdout.on("data", (b: Buffer) => {
      if (onData) onData(b);
      else if (collectStdout) out.push(b);
    });
    p.stderr.on("data", (b: Buffer) => {
      if (err.length < 1 << 20) err += b.toString("utf8");
    });
    p.on("error", reject);
    p.on("close", (code) => resolve({ code, stderr: err, stdout: Buffer.concat(out) }));
  });
}

function parseRate(s: string): number {
  const v = parseFloat(s) * (s.endsWith("k") ? 1000 : 1);
  // ffmpeg prints NTSC rates rounded (29.97); use the exact N*1000/1001.
  for (const base of [24, 30, 60, 120]) {
    const ntsc = (base * 1000) / 1001;
    if (Math.abs(v - ntsc) < 0.006) return ntsc;
  }
  return v;
}

/** A video file read with ffmpeg: one pass to count frames, one to decode the sampled ones. */
export async function fileSource(file: string): Promise<VideoSource> {
  let st;
  try {
    st = statSync(file);
  } catch {
    throw new QwenError(`video file not found: ${file}`);
  }
  if (!st.isFile()) throw new QwenError(`video path is neither a file nor a frame folder: ${file}`);
  if (st.size === 0) throw new QwenError(`video file ${file} is empty (0 bytes)`);
  const bin = requireFfmpeg(file);
  // Count frames without decoding (stream copy to the null muxer) and read the stream header.
  const probe = await run(bin, ["-hide_banner", "-nostdin", "-i", file, "-map", "0:v:0", "-c", "copy", "-f", "null", "-"], false);
  if (probe.code !== 0) {
    const last = probe.stderr.trim().split("\n").slice(-2).join(" ");
    throw new QwenError(`cannot read video ${file} with ffmpeg (not a video, or corrupt?): ${last}`);
  }
  const streamLine = probe.stderr.split("\n").find((l) => /Stream #\d+:\d+.*: Video:/.test(l));
  if (!streamLine) throw new QwenError(`video ${file} has no video stream`);
  const size = /, (\d{2,5})x(\d{2,5})[\s,\[]/.exec(streamLine) ?? /\b(\d+)x(\d+)\b/.exec(streamLine);
  if (!size) throw new QwenError(`cannot find the frame size of video ${file}`);
  let width = parseInt(size[1]!, 10);
  let height = parseInt(size[2]!, 10);
  const rateM = /([\d.]+k?) fps/.exec(streamLine) ?? /([\d.]+k?) tbr/.exec(streamLine);
  const fps = rateM ? parseRate(rateM[1]!) : null;
  const frameMatches = [...probe.stderr.matchAll(/frame=\s*(\d+)/g)];
  const total = frameMatches.length ? parseInt(frameMatches[frameMatches.length - 1]![1]!, 10) : 0;
  if (total <= 0) throw new QwenError(`video ${file} has no frames`);
  // Rotation metadata: ffmpeg auto-rotates when decoding, so swap the size for 90/270.
  const rot = /rotate\s*:\s*(-?\d+)/.exec(probe.stderr) ?? /rotation of (-?[\d.]+) degrees/.exec(probe.stderr);
  if (rot && Math.abs(Math.round(parseFloat(rot[1]!))) % 180 === 90) [width, height] = [height, width];
  return {
    name: file,
    totalFrames: total,
    fps,
    width,
    height,
    async readFrames(indices) {
      const want = new Map<number, number[]>(); // frame index -> output slots
      indices.forEach((fi, slot) => {
        const l = want.get(fi);
        if (l) l.push(slot);
        else want.set(fi, [slot]);
      });
      const out: (RgbImage | undefined)[] = new Array(indices.length);
      const frameBytes = width * height * 3;
      let pending: Buffer[] = [];
      let pendingLen = 0;
      let n = 0;
      let last: RgbImage | undefined;
      const maxWanted = Math.max(...indices);
      const onData = (b: Buffer): void => {
        pending.push(b);
        pendingLen += b.length;
        while (pendingLen >= frameBytes) {
          const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
          const slots = want.get(n);
          if (slots) {
            const img: RgbImage = { width, height, data: new Uint8Array(all.subarray(0, frameBytes)) };
            for (const s of slots) out[s] = img;
            last = img;
          }
          n++;
          const rest = all.subarray(frameBytes);
          pending = rest.length ? [rest] : [];
          pendingLen = rest.length;
        }
      };
      const args = ["-hide_banner", "-nostdin", "-v", "error", "-i", file, "-map", "0:v:0", "-vsync", "0", "-frames:v", String(maxWanted + 1), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"];
      const r = await run(bin, args, false, onData);
      if (r.code !== 0) throw new QwenError(`ffmpeg failed to decode video ${file}: ${r.stderr.trim().split("\n").slice(-2).join(" ")}`);
      if (n === 0 || !last) throw new QwenError(`video ${file}: ffmpeg decoded no frames`);
      // The container may announce more frames than decode; use the last decoded one for any missing.
      for (let s = 0; s < out.length; s++) if (!out[s]) out[s] = last;
      return out as RgbImage[];
    },
  };
}

/** A path to a video: a frame folder or a video file. `fps` overrides a folder's frame rate. */
export async function openVideo(path: string, folderFps?: number): Promise<VideoSource> {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new QwenError(`video not found: ${path}`);
  }
  return st.isDirectory() ? folderSource(path, folderFps) : fileSource(path);
}

// ------------------------------------------------------------------------------- pipeline

/** The Qwen3-VL video pipeline on a source: sample, resize, pad, patchify, timestamps. */
export async function processVideo(src: VideoSource, opts: VideoProcessOptions = {}): Promise<ProcessedVideo> {
  const what = `video ${src.name}`;
  const indices =
    opts.sampleFrames === false
      ? Array.from({ length: src.totalFrames }, (_, i) => i)
      : sampleFrameIndices(src.totalFrames, src.fps, opts, what);
  const resizeOpts: { minPixels?: number; maxPixels?: number } = {};
  if (opts.minPixels !== undefined) resizeOpts.minPixels = opts.minPixels;
  if (opts.maxPixels !== undefined) resizeOpts.maxPixels = opts.maxPixels;
  const [rh, rw] = smartResizeVideo(indices.length, src.height, src.width, resizeOpts, what);
  const frames = await src.readFrames(indices);
  const resizedCache = new Map<RgbImage, Uint8Array>();
  const resized = frames.map((f) => {
    let r = resizedCache.get(f);
    if (!r) {
      r = rh === f.height && rw === f.width ? f.data : resizeBicubic(f.data, f.width, f.height, 3, rw, rh);
      resizedCache.set(f, r);
    }
    return r;
  });
  const { pixelValues, grid } = patchify(resized, rh, rw, VIDEO_NORMALIZE_LUT);
  const fps = src.fps ?? DEFAULT_VIDEO_FPS;
  const timestamps = calculateTimestamps(indices, fps, TEMPORAL_PATCH_SIZE);
  return {
    pixelValues,
    grid,
    frameIndices: indices,
    fps,
    timestamps,
    timestampStrings: timestamps.map(timestampText),
    resizedHeight: rh,
    resizedWidth: rw,
    tokensPerFrame: (grid[1] * grid[2]) / 4,
  };
}
