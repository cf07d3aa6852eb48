// Conversation -> prompt text, token ids and pixel values (transformers Qwen3VLProcessor):
// render the chat template, load and preprocess every image and video in prompt order,
// expand each <|image_pad|> into gh*gw/4 pads and each video's
// <|vision_start|><|video_pad|><|vision_end|> into one "<t seconds>" block per temporal patch,
// then tokenize the expanded text.
//
// Message shape (HF/Qwen): {role, content: string | item[]} with items
//   {type:"text", text}
//   {type:"image", image: PATH | file:// | http(s):// | data: URL, min_pixels?, max_pixels?}
//   {type:"image_url", image_url: {url} | url}                       (OpenAI shape)
//   {type:"video", video: PATH | FOLDER | [frame paths], fps?, num_frames?, min_pixels?, max_pixels?,
//    min_frames?, max_frames?}
//   {type:"video_url", video_url: {url} | url}
// For a video file, `fps` is the sampling rate (frames per second to keep); for a folder or a
// list of frames, `fps` is the rate of those frames (a folder falls back to its video.json).
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { QwenError } from "../errors.js";
import { ChatTemplate } from "./chat-template.js";
import { decodeImage, loadImageFile, processImage, type ImageProcessOptions, type RgbImage } from "./image.js";
import { PATCH_DIM } from "./patchify.js";
import { Tokenizer } from "./tokenizer.js";
import { fileSource, folderSource, framesSource, processVideo, type VideoProcessOptions, type VideoSource } from "./video.js";

export const IMAGE_TOKEN = "<|image_pad|>";
export const VIDEO_TOKEN = "<|video_pad|>";
export const VISION_START = "<|vision_start|>";
export const VISION_END = "<|vision_end|>";

/** Image settings (preprocessor_config.json). */
export interface ImageConfig {
  minPixels: number;
  maxPixels: number;
}

/** Video settings (video_preprocessor_config.json). */
export interface VideoConfig {
  minPixels: number;
  maxPixels: number;
  fps: number;
  minFrames: number;
  maxFrames: number;
  numFrames?: number;
  sampleFrames: boolean;
}

export interface ProcessOptions {
  /** Directory that relative media paths resolve against (default: the current directory). */
  baseDir?: string;
  /** Append the assistant turn opener (default true). */
  addGenerationPrompt?: boolean;
  addVisionId?: boolean;
  tools?: unknown[];
  /** Extra chat-template variables. */
  templateKwargs?: Record<string, unknown>;
  /** Per-request image bounds (a media item's own min_pixels/max_pixels win). */
  image?: Partial<Pick<ImageConfig, "minPixels" | "maxPixels">>;
  /** Per-request video settings (a media item's own fields win). */
  video?: Partial<Pick<VideoConfig, "minPixels" | "maxPixels" | "fps" | "numFrames" | "minFrames" | "maxFrames">>;
}

export interface ProcessedImages {
  /** [sum of gh*gw, 1536] row-major, images concatenated in prompt order. */
  pixelValues: Float32Array;
  grids: [number, number, number][];
}

export interface ProcessedVideos {
  /** [sum of gt*gh*gw, 1536] row-major, videos concatenated in prompt order. */
  pixelValues: Float32Array;
  grids: [number, number, number][];
  /** Seconds of each temporal patch, per video. */
  timestamps: number[][];
  /** Sampled frame indices, per video. */
  frameIndices: number[][];
  /** Frame rate used for the timestamps, per video. */
  fps: number[];
}

export interface ProcessedInput {
  /** The rendered prompt (placeholders not yet expanded). */
  text: string;
  /** The prompt with placeholders expanded (what is tokenized). */
  expandedText: string;
  inputIds: number[];
  images: ProcessedImages | null;
  videos: ProcessedVideos | null;
}

type Item = Record<string, unknown>;
interface MediaRef {
  kind: "image" | "video";
  item: Item;
  where: string;
}

function readJsonIfExists(path: string): Record<string, unknown> | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new QwenError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

function checkGeometry(cfg: Record<string, unknown>, path: string): void {
  const want: Record<string, number> = { patch_size: 16, merge_size: 2, temporal_patch_size: 2 };
  for (const [k, v] of Object.entries(want)) {
    const got = cfg[k];
    if (got !== undefined && got !== null && got !== v) throw new QwenError(`${path}: ${k} = ${JSON.stringify(got)} is not supported (Qwen3-VL uses ${v})`);
  }
}

/** Image settings from a checkpoint's preprocessor_config.json (defaults: Qwen3-VL's). */
export function readImageConfig(dir: string): ImageConfig {
  const path = join(dir, "preprocessor_config.json");
  const cfg = readJsonIfExists(path) ?? {};
  checkGeometry(cfg, path);
  const size = (cfg["size"] ?? {}) as Record<string, unknown>;
  return {
    minPixels: num(cfg["min_pixels"]) ?? num(size["shortest_edge"]) ?? 65536,
    maxPixels: num(cfg["max_pixels"]) ?? num(size["longest_edge"]) ?? 16777216,
  };
}

/** Video settings from a checkpoint's video_preprocessor_config.json (defaults: Qwen3-VL's). */
export function readVideoConfig(dir: string): VideoConfig {
  const path = join(dir, "video_preprocessor_config.json");
  const cfg = readJsonIfExists(path) ?? {};
  checkGeometry(cfg, path);
  const size = (cfg["size"] ?? {}) as Record<string, unknown>;
  const out: VideoConfig = {
    minPixels: num(cfg["min_pixels"]) ?? num(size["shortest_edge"]) ?? 4096,
    maxPixels: num(cfg["max_pixels"]) ?? num(size["longest_edge"]) ?? 25165824,
    fps: num(cfg["fps"]) ?? 2,
    minFrames: num(cfg["min_frames"]) ?? 4,
    maxFrames: num(cfg["max_frames"]) ?? 768,
    sampleFrames: cfg["do_sample_frames"] !== false,
  };
  const nf = num(cfg["num_frames"]);
  if (nf !== undefined) out.numFrames = nf;
  return out;
}

function itemKind(item: Item, where: string): "text" | "image" | "video" {
  const t = item["type"];
  if (t === "text") return "text";
  if (t === "image" || t === "image_url") return "image";
  if (t === "video" || t === "video_url") return "video";
  if (t === undefined) {
    if ("image" in item || "image_url" in item) return "image";
    if ("video" in item || "video_url" in item) return "video";
    if ("text" in item) return "text";
  }
  throw new QwenError(`${where}: unknown content item type ${JSON.stringify(t ?? null)} (expected text, image, image_url, video or video_url)`);
}

/** Validates the conversation and lists its media in prompt order. */
function collectMedia(messages: unknown): MediaRef[] {
  if (!Array.isArray(messages)) throw new QwenError("messages must be an array of {role, content} objects");
  if (messages.length === 0) throw new QwenError("messages is empty");
  const media: MediaRef[] = [];
  messages.forEach((m, i) => {
    if (m === null || typeof m !== "object" || Array.isArray(m)) throw new QwenError(`message ${i} is not an object`);
    const msg = m as Record<string, unknown>;
    if (typeof msg["role"] !== "string") throw new QwenError(`message ${i} has no string "role"`);
    const c = msg["content"];
    if (c === undefined || c === null || typeof c === "string") return;
    if (!Array.isArray(c)) throw new QwenError(`message ${i} ("${msg["role"]}"): content must be a string or an array of items`);
    c.forEach((it, j) => {
      const where = `message ${i} ("${msg["role"]}"), content item ${j}`;
      if (it === null || typeof it !== "object" || Array.isArray(it)) throw new QwenError(`${where} is not an object`);
      const item = it as Item;
      const kind = itemKind(item, where);
      if (kind === "text") {
        if (typeof item["text"] !== "string") throw new QwenError(`${where}: a text item needs a string "text"`);
      } else media.push({ kind, item, where });
    });
  });
  return media;
}

function urlOf(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { url?: unknown }).url === "string") return (v as { url: string }).url;
  return undefined;
}

type Located = { kind: "path"; path: string } | { kind: "bytes"; bytes: Uint8Array; name: string };

function decodeDataUrl(url: string, where: string): Uint8Array {
  const m = /^data:([^,]*?),(.*)$/s.exec(url);
  if (!m) throw new QwenError(`${where}: malformed data: URL`);
  const isB64 = /;base64$/i.test(m[1]!);
  try {
    return isB64 ? new Uint8Array(Buffer.from(m[2]!, "base64")) : new Uint8Array(Buffer.from(decodeURIComponent(m[2]!), "latin1"));
  } catch (e) {
    throw new QwenError(`${where}: cannot decode data: URL: ${(e as Error).message}`);
  }
}

async function fetchBytes(url: string, where: string): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new QwenError(`${where}: cannot fetch ${url}: ${(e as Error).message}`);
  }
  if (!res.ok) throw new QwenError(`${where}: fetching ${url} failed with HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

async function locate(ref: string, baseDir: string, where: string): Promise<Located> {
  if (ref.length === 0) throw new QwenError(`${where}: empty media path`);
  if (/^data:/i.test(ref)) return { kind: "bytes", bytes: decodeDataUrl(ref, where), name: `${where} (data: URL)` };
  if (/^https?:\/\//i.test(ref)) return { kind: "bytes", bytes: await fetchBytes(ref, where), name: ref };
  if (/^file:\/\//i.test(ref)) {
    try {
      return { kind: "path", path: fileURLToPath(ref) };
    } catch (e) {
      throw new QwenError(`${where}: bad file URL ${ref}: ${(e as Error).message}`);
    }
  }
  return { kind: "path", path: isAbsolute(ref) ? ref : resolve(baseDir, ref) };
}

function pick<T>(...vals: (T | undefined)[]): T | undefined {
  for (const v of vals) if (v !== undefined) return v;
  return undefined;
}

function itemNumber(item: Item, key: string, where: string): number | undefined {
  const v = item[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw new QwenError(`${where}: "${key}" must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

export class Processor {
  constructor(
    readonly tokenizer: Tokenizer,
    readonly template: ChatTemplate,
    readonly imageConfig: ImageConfig,
    readonly videoConfig: VideoConfig,
  ) {
    for (const t of [IMAGE_TOKEN, VIDEO_TOKEN, VISION_START, VISION_END]) tokenizer.requireId(t);
  }

  /** Tokenizer, chat template and pre-processor settings of a checkpoint directory. */
  static fromDir(dir: string): Processor {
    if (!existsSync(dir)) throw new QwenError(`model directory not found: ${dir}`);
    return new Processor(Tokenizer.fromDir(dir), ChatTemplate.fromDir(dir), readImageConfig(dir), readVideoConfig(dir));
  }

  /** Renders the conversation only (no media loaded). */
  render(messages: unknown[], opts: ProcessOptions = {}): string {
    collectMedia(messages);
    const r: Parameters<ChatTemplate["render"]>[1] = { addGenerationPrompt: opts.addGenerationPrompt ?? true };
    if (opts.addVisionId !== undefined) r.addVisionId = opts.addVisionId;
    if (opts.tools !== undefined) r.tools = opts.tools;
    if (opts.templateKwargs !== undefined) r.extra = opts.templateKwargs;
    return this.template.render(messages, r);
  }

  private async loadImage(ref: MediaRef, baseDir: string, opts: ProcessOptions) {
    const { item, where } = ref;
    const src = item["type"] === "image_url" || (item["image"] === undefined && item["image_url"] !== undefined) ? urlOf(item["image_url"]) : urlOf(item["image"]);
    if (src === undefined) throw new QwenError(`${where}: an image item needs "image" (a path or URL) or "image_url": {"url": ...}`);
    const loc = await locate(src, baseDir, where);
    const img = loc.kind === "path" ? await loadImageFile(loc.path) : await decodeImage(loc.bytes, loc.name);
    const o: ImageProcessOptions = {
      minPixels: pick(itemNumber(item, "min_pixels", where), opts.image?.minPixels, this.imageConfig.minPixels)!,
      maxPixels: pick(itemNumber(item, "max_pixels", where), opts.image?.maxPixels, this.imageConfig.maxPixels)!,
    };
    return processImage(img, o, loc.kind === "path" ? loc.path : loc.name);
  }

  private async loadVideo(ref: MediaRef, baseDir: string, opts: ProcessOptions, cleanups: (() => void)[]) {
    const { item, where } = ref;
    const raw = item["type"] === "video_url" || (item["video"] === undefined && item["video_url"] !== undefined) ? item["video_url"] : item["video"];
    const itemFps = itemNumber(item, "fps", where);
    const itemN = itemNumber(item, "num_frames", where);
    if (itemN !== undefined && !Number.isInteger(itemN)) throw new QwenError(`${where}: "num_frames" must be a whole number, got ${itemN}`);
    const vc = this.videoConfig;
    const base: VideoProcessOptions = {
      minPixels: pick(itemNumber(item, "min_pixels", where), opts.video?.minPixels, vc.minPixels)!,
      maxPixels: pick(itemNumber(item, "max_pixels", where), opts.video?.maxPixels, vc.maxPixels)!,
      minFrames: pick(itemNumber(item, "min_frames", where), opts.video?.minFrames, vc.minFrames)!,
      maxFrames: pick(itemNumber(item, "max_frames", where), opts.video?.maxFrames, vc.maxFrames)!,
      sampleFrames: vc.sampleFrames,
    };
    let src: VideoSource;
    let isFile = false;
    if (Array.isArray(raw)) {
      // A list of frame images (already sampled at `fps`).
      if (raw.length === 0) throw new QwenError(`${where}: the video frame list is empty`);
      const frames: RgbImage[] = [];
      for (const [k, f] of raw.entries()) {
        if (typeof f !== "string") throw new QwenError(`${where}: video frame ${k} is not a path string`);
        const loc = await locate(f, baseDir, `${where}, frame ${k}`);
        frames.push(loc.kind === "path" ? await loadImageFile(loc.path) : await decodeImage(loc.bytes, loc.name));
      }
      src = framesSource(frames, itemFps ?? null, `${where} (frame list)`);
    } else {
      const url = urlOf(raw);
      if (url === undefined) throw new QwenError(`${where}: a video item needs "video" (a file, a frame folder, or a list of frames) or "video_url": {"url": ...}`);
      const loc = await locate(url, baseDir, where);
      let path: string;
      if (loc.kind === "bytes") {
        const dir = mkdtempSync(join(tmpdir(), "qwen3vl-video-"));
        cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
        path = join(dir, "video");
        writeFileSync(path, loc.bytes);
      } else path = loc.path;
      if (!existsSync(path)) throw new QwenError(`video not found: ${path} (${where})`);
      if (statSync(path).isDirectory()) src = await folderSource(path, itemFps);
      else {
        src = await fileSource(path);
        isFile = true;
      }
    }
    // Sampling: item num_frames, or (files) item fps, else the request, else the config.
    const o: VideoProcessOptions = { ...base };
    const sampleFps = isFile ? itemFps : undefined;
    if (itemN !== undefined) o.numFrames = itemN;
    else if (sampleFps !== undefined) o.fps = sampleFps;
    else if (opts.video?.numFrames !== undefined) o.numFrames = opts.video.numFrames;
    else if (opts.video?.fps !== undefined) o.fps = opts.video.fps;
    else if (vc.numFrames !== undefined) o.numFrames = vc.numFrames;
    else o.fps = vc.fps;
    return processVideo(src, o);
  }

  /** The whole input side: prompt, ids and pixel values for a conversation. */
  async process(messages: unknown[], opts: ProcessOptions = {}): Promise<ProcessedInput> {
    const media = collectMedia(messages);
    const text = this.render(messages, opts);
    const baseDir = opts.baseDir ?? process.cwd();

    // Placeholder counts must agree with the media before anything is decoded.
    const nImages = media.filter((m) => m.kind === "image").length;
    const nVideos = media.length - nImages;
    const imagePads = countOccurrences(text, IMAGE_TOKEN);
    const videoPads = countOccurrences(text, VIDEO_TOKEN);
    if (imagePads !== nImages) {
      throw new QwenError(`the prompt has ${imagePads} image placeholder(s) (${IMAGE_TOKEN}) but ${nImages} image(s) were given` + (imagePads > nImages ? " (is the placeholder written in a text item?)" : ""));
    }
    if (videoPads !== nVideos) {
      throw new QwenError(`the prompt has ${videoPads} video placeholder(s) (${VIDEO_TOKEN}) but ${nVideos} video(s) were given` + (videoPads > nVideos ? " (is the placeholder written in a text item?)" : ""));
    }

    const cleanups: (() => void)[] = [];
    try {
      const images = [];
      const videos = [];
      for (const m of media) {
        if (m.kind === "image") images.push(await this.loadImage(m, baseDir, opts));
        else videos.push(await this.loadVideo(m, baseDir, opts, cleanups));
      }

      // Expansion, first placeholder first (images and videos consumed from separate queues).
      let expanded = text;
      if (images.length) {
        const parts = expanded.split(IMAGE_TOKEN);
        let s = parts[0]!;
        for (let k = 1; k < parts.length; k++) s += IMAGE_TOKEN.repeat(images[k - 1]!.numTokens) + parts[k]!;
        expanded = s;
      }
      if (videos.length) {
        const triple = VISION_START + VIDEO_TOKEN + VISION_END;
        const PH = "\u0000VIDEO\u0000";
        for (const v of videos) {
          let block = "";
          for (let t = 0; t < v.grid[0]; t++) block += v.timestampStrings[t]! + VISION_START + PH.repeat(v.tokensPerFrame) + VISION_END;
          const at = expanded.indexOf(triple);
          if (at >= 0) expanded = expanded.slice(0, at) + block + expanded.slice(at + triple.length);
          else {
            const b = expanded.indexOf(VIDEO_TOKEN);
            expanded = expanded.slice(0, b) + block + expanded.slice(b + VIDEO_TOKEN.length);
          }
        }
        expanded = expanded.split(PH).join(VIDEO_TOKEN);
      }
      const inputIds = this.tokenizer.encode(expanded);

      return {
        text,
        expandedText: expanded,
        inputIds,
        images: images.length
          ? { pixelValues: concat(images.map((i) => i.pixelValues)), grids: images.map((i) => i.grid) }
          : null,
        videos: videos.length
          ? {
              pixelValues: concat(videos.map((v) => v.pixelValues)),
              grids: videos.map((v) => v.grid),
              timestamps: videos.map((v) => v.timestamps),
              frameIndices: videos.map((v) => v.frameIndices),
              fps: videos.map((v) => v.fps),
            }
          : null,
      };
    } finally {
      for (const c of cleanups) c();
    }
  }
}

function countOccurrences(s: string, sub: string): number {
  let n = 0;
  for (let i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + sub.length)) n++;
  return n;
}

function concat(parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Rows of a pixel_values buffer (each PATCH_DIM wide). */
export function pixelRows(pv: Float32Array): number {
  return pv.length / PATCH_DIM;
}
