/**
 * Grounding output: parse the model's `bbox_2d` / `point_2d` JSON, map its 0-1000 relative
 * coordinates to the original image's pixels, and draw labelled boxes / points onto an RGB image
 * that can be saved as PNG.
 *
 * Qwen3-VL reports boxes and points on a 0-1000 grid relative to the original image
 * (x right, y down, origin top-left): x_px = x/1000*W, y_px = y/1000*H (spec section 10).
 */
import { deflateSync } from "node:zlib";
import { writeFile, rename, unlink } from "node:fs/promises";
import { QwenError } from "../errors.js";

/** 8-bit RGB image, rows top to bottom, 3 bytes per pixel. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface GroundingBox {
  type: "box";
  /** [x1, y1, x2, y2] */
  bbox: [number, number, number, number];
  label?: string;
  /** The other fields of the object the model wrote (e.g. "score", "type"). */
  extra: Record<string, unknown>;
}

export interface GroundingPoint {
  type: "point";
  /** [x, y] */
  point: [number, number];
  label?: string;
  extra: Record<string, unknown>;
}

export type GroundingItem = GroundingBox | GroundingPoint;

// ---------------------------------------------------------------------------------------------
// Lenient JSON extraction.

/**
 * Rewrite near-JSON into JSON outside of string literals: drop trailing commas before `]`/`}`,
 * turn single-quoted strings into double-quoted ones, and Python's None/True/False into JSON.
 */
export function repairJson(s: string): string {
  let out = "";
  let i = 0;
  const n = s.length;
  while (i < n) {
    const c = s[i]!;
    if (c === '"') {
      let j = i + 1;
      while (j < n && s[j] !== '"') j += s[j] === "\\" ? 2 : 1;
      out += s.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (c === "'") {
      let j = i + 1;
      let body = "";
      while (j < n && s[j] !== "'") {
        if (s[j] === "\\" && j + 1 < n) {
          const e = s[j + 1]!;
          body += e === "'" ? "'" : e === '"' ? '"' : e === "n" ? "\n" : e === "t" ? "\t" : e === "\\" ? "\\" : e;
          j += 2;
        } else {
          body += s[j];
          j++;
        }
      }
      out += JSON.stringify(body);
      i = j + 1;
      continue;
    }
    if (c === ",") {
      let j = i + 1;
      while (j < n && /\s/.test(s[j]!)) j++;
      if (j < n && (s[j] === "]" || s[j] === "}")) {
        i = j; // drop the trailing comma
        continue;
      }
    }
    const word = /^(None|True|False)\b/.exec(s.slice(i, i + 6));
    if (word && (i === 0 || !/[A-Za-z0-9_]/.test(s[i - 1]!))) {
      out += word[1] === "None" ? "null" : word[1] === "True" ? "true" : "false";
      i += word[1]!.length;
      continue;
    }
    out += c;
    i++;
  }
  return out;
}

function tryParse(s: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(s) };
  } catch {
    try {
      return { ok: true, value: JSON.parse(repairJson(s)) };
    } catch {
      return { ok: false };
    }
  }
}

/** Index just past the bracket matching the one at `start` (string-aware), or -1 if unbalanced. */
function matchBracket(s: string, start: number): number {
  const stack: string[] = [];
  let quote: string | null = null;
  for (let i = start; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === "[" || c === "{") stack.push(c === "[" ? "]" : "}");
    else if (c === "]" || c === "}") {
      if (stack.pop() !== c) return -1;
      if (stack.length === 0) return i + 1;
    }
  }
  return -1;
}

/** The contents of the first ``` fence (```json or bare) that holds JSON-looking text, if any. */
function fencedBlocks(text: string): string[] {
  const out: string[] = [];
  const re = /```[A-Za-z0-9_-]*[^\S\n]*\n?([\s\S]*?)(```|$)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    if (/[[{]/.test(m[1]!)) out.push(m[1]!);
    if (m[0].length === 0) break;
  }
  return out;
}

/**
 * Find JSON in free model output: code fences stripped, near-JSON repaired (trailing commas,
 * single quotes, Python literals), else the outermost balanced `[...]` / `{...}` region that
 * parses; several such regions (or the complete objects of a list cut off by the token limit)
 * come back as an array. undefined when nothing parses.
 */
export function extractJson(text: string): unknown {
  const candidates = [...fencedBlocks(text), text];
  for (const cand of candidates) {
    const direct = tryParse(cand.trim());
    if (direct.ok) return direct.value;
    // Outermost balanced [...] / {...} regions that parse, left to right; an unbalanced opening
    // bracket (a list cut off by the token limit) is stepped into, so its complete objects survive.
    const objs: unknown[] = [];
    for (let i = 0; i < cand.length; i++) {
      const c = cand[i];
      if (c !== "[" && c !== "{") continue;
      const end = matchBracket(cand, i);
      if (end < 0) continue;
      const r = tryParse(cand.slice(i, end));
      if (r.ok) {
        objs.push(r.value);
        i = end - 1;
      }
    }
    if (objs.length === 1) return objs[0];
    if (objs.length > 0) return objs;
  }
  return undefined;
}

function toNumber(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}

function numbers(v: unknown, count: number): number[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const flat = v.length === count / 2 && v.every(Array.isArray) ? v.flat() : v; // [[x1,y1],[x2,y2]]
  if (flat.length !== count) return undefined;
  const out: number[] = [];
  for (const x of flat) {
    const n = toNumber(x);
    if (n === undefined) return undefined;
    out.push(n);
  }
  return out;
}

const BOX_KEYS = ["bbox_2d", "bbox", "box_2d", "box"];
const POINT_KEYS = ["point_2d", "point", "coordinate"];

function collect(v: unknown, out: GroundingItem[], depth: number): void {
  if (depth > 8) return;
  if (Array.isArray(v)) {
    for (const x of v) collect(x, out, depth + 1);
    return;
  }
  if (v === null || typeof v !== "object") return;
  const o = v as Record<string, unknown>;
  const labelRaw = o.label ?? o.name ?? o.category;
  const label = labelRaw === undefined || labelRaw === null ? undefined : String(labelRaw);
  const boxKey = BOX_KEYS.find((k) => k in o);
  const pointKey = POINT_KEYS.find((k) => k in o);
  const extraOf = (skip: string): Record<string, unknown> => {
    const e: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) if (k !== skip && k !== "label") e[k] = x;
    return e;
  };
  if (boxKey !== undefined) {
    const b = numbers(o[boxKey], 4);
    if (b) {
      const item: GroundingBox = { type: "box", bbox: [b[0]!, b[1]!, b[2]!, b[3]!], extra: extraOf(boxKey) };
      if (label !== undefined) item.label = label;
      out.push(item);
    }
    return;
  }
  if (pointKey !== undefined) {
    const p = numbers(o[pointKey], 2);
    if (p) {
      const item: GroundingPoint = { type: "point", point: [p[0]!, p[1]!], extra: extraOf(pointKey) };
      if (label !== undefined) item.label = label;
      out.push(item);
    }
    return;
  }
  // a wrapper object such as {"objects": [...]}
  for (const x of Object.values(o)) if (x !== null && typeof x === "object") collect(x, out, depth + 1);
}

/**
 * Boxes and points from model output (coordinates as written, i.e. on the 0-1000 grid). Accepts
 * fenced or bare JSON, a single object or a list, near-JSON; entries without usable coordinates
 * are skipped. [] when nothing is found.
 */
export function parseGrounding(text: string): GroundingItem[] {
  const v = extractJson(text);
  const out: GroundingItem[] = [];
  collect(v, out, 0);
  return out;
}

/**
 * Map relative coordinates (0..scale, default 1000) to the original image's pixels:
 * x*W/scale, y*H/scale, clamped to [0,W] x [0,H], box corners ordered so x1<=x2, y1<=y2.
 * The result is continuous pixel coordinates (a box [0,0,W,H] covers the whole image).
 */
export function toPixelCoordinates(items: readonly GroundingItem[], width: number, height: number, options: { scale?: number } = {}): GroundingItem[] {
  const scale = options.scale ?? 1000;
  if (!(width > 0 && height > 0)) throw new QwenError(`image size must be positive, got ${width}x${height}`);
  if (!(scale > 0)) throw new QwenError(`coordinate scale must be positive, got ${scale}`);
  const cx = (x: number): number => Math.min(width, Math.max(0, (x / scale) * width));
  const cy = (y: number): number => Math.min(height, Math.max(0, (y / scale) * height));
  return items.map((it) => {
    if (it.type === "box") {
      const [a, b, c, d] = it.bbox;
      const x1 = cx(a), y1 = cy(b), x2 = cx(c), y2 = cy(d);
      return { ...it, bbox: [Math.min(x1, x2), Math.min(y1, y2), Math.max(x1, x2), Math.max(y1, y2)] };
    }
    return { ...it, point: [cx(it.point[0]), cy(it.point[1])] };
  });
}

/** parseGrounding + toPixelCoordinates. */
export function parseGroundingToPixels(text: string, width: number, height: number, options: { scale?: number } = {}): GroundingItem[] {
  return toPixelCoordinates(parseGrounding(text), width, height, options);
}

// ---------------------------------------------------------------------------------------------
// Drawing.

export type Rgb = [number, number, number];

/** Distinct, saturated colours; a label always gets the same one. */
export const PALETTE: readonly Rgb[] = [
  [230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240],
  [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [170, 110, 40], [255, 225, 25],
];

function colourFor(label: string | undefined, index: number): Rgb {
  if (label === undefined) return PALETTE[index % PALETTE.length]!;
  let h = 2166136261;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 16777619);
  return PALETTE[(h >>> 0) % PALETTE.length]!;
}

export interface DrawOptions {
  /** Outline thickness in pixels (default max(2, round(min(W,H)/200))). */
  lineWidth?: number;
  /** Point marker radius (default max(3, round(min(W,H)/100))). */
  pointRadius?: number;
  /** Font magnification of the 5x7 glyphs (default max(1, floor(min(W,H)/320))). */
  fontScale?: number;
  /** Fixed colour for everything (default: a palette colour per label). */
  color?: Rgb;
  /** Draw labels (default true). */
  labels?: boolean;
}

function checkImage(img: RgbImage): void {
  if (!Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width <= 0 || img.height <= 0) {
    throw new QwenError(`invalid image size ${img.width}x${img.height}`);
  }
  if (img.data.length !== img.width * img.height * 3) {
    throw new QwenError(`RGB image data has ${img.data.length} bytes, expected ${img.width * img.height * 3} for ${img.width}x${img.height}`);
  }
}

function fillRect(img: RgbImage, x0: number, y0: number, x1: number, y1: number, c: Rgb): void {
  // inclusive-exclusive [x0,x1) x [y0,y1), clipped
  const xa = Math.max(0, x0), xb = Math.min(img.width, x1);
  const ya = Math.max(0, y0), yb = Math.min(img.height, y1);
  for (let y = ya; y < yb; y++) {
    let o = (y * img.width + xa) * 3;
    for (let x = xa; x < xb; x++, o += 3) {
      img.data[o] = c[0];
      img.data[o + 1] = c[1];
      img.data[o + 2] = c[2];
    }
  }
}

/**
 * Pixel rectangle covered by a box in continuous coordinates: columns round(x1) .. round(x2)-1
 * and rows round(y1) .. round(y2)-1 (at least one pixel), clipped to the image.
 */
export function boxPixelBounds(bbox: readonly [number, number, number, number], width: number, height: number): { left: number; top: number; right: number; bottom: number } {
  const clampI = (v: number, hi: number): number => Math.min(hi - 1, Math.max(0, v));
  const left = clampI(Math.round(bbox[0]), width);
  const top = clampI(Math.round(bbox[1]), height);
  const right = Math.max(left, clampI(Math.round(bbox[2]) - 1, width));
  const bottom = Math.max(top, clampI(Math.round(bbox[3]) - 1, height));
  return { left, top, right, bottom };
}

/**
 * Draw boxes (outline inside the box's pixel bounds) and points (filled disc with a white rim),
 * each with its label on a filled tag, onto a copy of the image. Items must be in pixel
 * coordinates (see toPixelCoordinates).
 */
export function drawGrounding(image: RgbImage, items: readonly GroundingItem[], options: DrawOptions = {}): RgbImage {
  checkImage(image);
  const img: RgbImage = { width: image.width, height: image.height, data: new Uint8Array(image.data) };
  const m = Math.min(img.width, img.height);
  const lw = Math.max(1, Math.round(options.lineWidth ?? Math.max(2, Math.round(m / 200))));
  const radius = Math.max(1, Math.round(options.pointRadius ?? Math.max(3, Math.round(m / 100))));
  const fs = Math.max(1, Math.round(options.fontScale ?? Math.max(1, Math.floor(m / 320))));
  const showLabels = options.labels ?? true;
  items.forEach((it, idx) => {
    const c = options.color ?? colourFor(it.label, idx);
    if (it.type === "box") {
      const { left, top, right, bottom } = boxPixelBounds(it.bbox, img.width, img.height);
      fillRect(img, left, top, right + 1, Math.min(bottom + 1, top + lw), c); // top
      fillRect(img, left, Math.max(top, bottom + 1 - lw), right + 1, bottom + 1, c); // bottom
      fillRect(img, left, top, Math.min(right + 1, left + lw), bottom + 1, c); // left
      fillRect(img, Math.max(left, right + 1 - lw), top, right + 1, bottom + 1, c); // right
      if (showLabels && it.label) {
        const h = textHeight(fs) + 2 * fs;
        const ty = top - h >= 0 ? top - h : top + lw; // above the box, else just inside it
        drawLabel(img, it.label, left, ty, fs, c);
      }
    } else {
      const px = Math.round(it.point[0]);
      const py = Math.round(it.point[1]);
      const rim = radius + Math.max(1, Math.round(radius / 3));
      disc(img, px, py, rim, [255, 255, 255]);
      disc(img, px, py, radius, c);
      if (showLabels && it.label) drawLabel(img, it.label, px + rim + 2, py - Math.floor((textHeight(fs) + 2 * fs) / 2), fs, c);
    }
  });
  return img;
}

function disc(img: RgbImage, cx: number, cy: number, r: number, c: Rgb): void {
  for (let y = cy - r; y <= cy + r; y++) {
    for (let x = cx - r; x <= cx + r; x++) {
      if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r) fillRect(img, x, y, x + 1, y + 1, c);
    }
  }
}

// 5x7 bitmap font (our own glyphs): 7 rows per character, bit 4 = leftmost column.
const GLYPHS: Record<string, readonly number[]> = {
  A: [0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11], B: [0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e],
  C: [0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e], D: [0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c],
  E: [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f], F: [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10],
  G: [0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f], H: [0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11],
  I: [0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e], J: [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c],
  K: [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11], L: [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f],
  M: [0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11], N: [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
  O: [0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e], P: [0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10],
  Q: [0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d], R: [0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11],
  S: [0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e], T: [0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
  U: [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e], V: [0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04],
  W: [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a], X: [0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11],
  Y: [0x11, 0x11, 0x0a, 0x04, 0x04, 0x04, 0x04], Z: [0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f],
  "0": [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e], "1": [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
  "2": [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f], "3": [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
  "4": [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02], "5": [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
  "6": [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e], "7": [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
  "8": [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e], "9": [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
  " ": [0, 0, 0, 0, 0, 0, 0], ".": [0, 0, 0, 0, 0, 0x0c, 0x0c], ",": [0, 0, 0, 0, 0x0c, 0x04, 0x08],
  ":": [0, 0x0c, 0x0c, 0, 0x0c, 0x0c, 0], ";": [0, 0x0c, 0x0c, 0, 0x0c, 0x04, 0x08],
  "-": [0, 0, 0, 0x1f, 0, 0, 0], _: [0, 0, 0, 0, 0, 0, 0x1f], "(": [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
  ")": [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08], "[": [0x0e, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0e],
  "]": [0x0e, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0e], "/": [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
  "'": [0x04, 0x04, 0x08, 0, 0, 0, 0], '"': [0x0a, 0x0a, 0, 0, 0, 0, 0], "!": [0x04, 0x04, 0x04, 0x04, 0x04, 0, 0x04],
  "?": [0x0e, 0x11, 0x01, 0x02, 0x04, 0, 0x04], "#": [0x0a, 0x0a, 0x1f, 0x0a, 0x1f, 0x0a, 0x0a],
  "%": [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03], "+": [0, 0x04, 0x04, 0x1f, 0x04, 0x04, 0],
  "=": [0, 0, 0x1f, 0, 0x1f, 0, 0], "*": [0, 0x04, 0x15, 0x0e, 0x15, 0x04, 0],
  "&": [0x0c, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0d], "<": [0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02],
  ">": [0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08],
};

const textHeight = (scale: number): number => 7 * scale;
/** Width in pixels of `text` at a font scale (6 columns per character: 5 + 1 spacing). */
export const textWidth = (text: string, scale = 1): number => Math.max(0, [...text].length * 6 - 1) * scale;

/** Draw text with the built-in 5x7 font (lower case shown as upper case, unknown characters as "?"). */
export function drawText(img: RgbImage, text: string, x: number, y: number, color: Rgb, scale = 1): void {
  let cx = x;
  for (const ch of text) {
    const g = GLYPHS[ch.toUpperCase()] ?? GLYPHS["?"]!;
    for (let r = 0; r < 7; r++) {
      const bits = g[r]!;
      for (let col = 0; col < 5; col++) {
        if (bits & (0x10 >> col)) fillRect(img, cx + col * scale, y + r * scale, cx + (col + 1) * scale, y + (r + 1) * scale, color);
      }
    }
    cx += 6 * scale;
  }
}

function drawLabel(img: RgbImage, text: string, x: number, y: number, scale: number, bg: Rgb): void {
  const pad = scale;
  const w = textWidth(text, scale) + 2 * pad;
  const h = textHeight(scale) + 2 * pad;
  const x0 = Math.max(0, Math.min(x, img.width - w));
  const y0 = Math.max(0, Math.min(y, img.height - h));
  fillRect(img, x0, y0, x0 + w, y0 + h, bg);
  const lum = 0.299 * bg[0] + 0.587 * bg[1] + 0.114 * bg[2];
  drawText(img, text, x0 + pad, y0 + pad, lum > 140 ? [0, 0, 0] : [255, 255, 255], scale);
}

// ---------------------------------------------------------------------------------------------
// PNG writer (8-bit RGB, zlib via node:zlib, adaptive per-row filters).

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(parts: Uint8Array[]): number {
  let c = 0xffffffff;
  for (const p of parts) for (let i = 0; i < p.length; i++) c = CRC_TABLE[(c ^ p[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32([head.subarray(4), data]), 0);
  return Buffer.concat([head, data, crc]);
}

/** Encode an RGB image as PNG bytes. */
export function encodePng(img: RgbImage): Buffer {
  checkImage(img);
  const { width: w, height: h, data } = img;
  const stride = w * 3;
  const raw = Buffer.alloc((stride + 1) * h);
  const cand = [0, 1, 2, 3, 4].map(() => new Uint8Array(stride));
  const zero = new Uint8Array(stride);
  for (let y = 0; y < h; y++) {
    const row = data.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? data.subarray((y - 1) * stride, y * stride) : zero;
    let best = 0;
    let bestSum = Infinity;
    for (let f = 0; f < 5; f++) {
      const out = cand[f]!;
      let sum = 0;
      for (let i = 0; i < stride; i++) {
        const a = i >= 3 ? row[i - 3]! : 0;
        const b = prev[i]!;
        const c = i >= 3 ? prev[i - 3]! : 0;
        let pred = 0;
        if (f === 1) pred = a;
        else if (f === 2) pred = b;
        else if (f === 3) pred = (a + b) >> 1;
        else if (f === 4) {
          const p = a + b - c;
          const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
        }
        const v = (row[i]! - pred) & 0xff;
        out[i] = v;
        sum += v < 128 ? v : 256 - v;
      }
      if (sum < bestSum) {
        bestSum = sum;
        best = f;
      }
    }
    raw[y * (stride + 1)] = best;
    raw.set(cand[best]!, y * (stride + 1) + 1);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: truecolour
  ihdr[10] = 0; // deflate
  ihdr[11] = 0; // adaptive filtering
  ihdr[12] = 0; // no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw, { level: 6 })),
    chunk("IEND", new Uint8Array(0)),
  ]);
}

/** Write an RGB image as a PNG file (written to a temporary name, then renamed). */
export async function savePng(path: string, img: RgbImage): Promise<void> {
  const bytes = encodePng(img);
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw new QwenError(`cannot write PNG ${path}: ${(e as Error).message}`);
  }
}
