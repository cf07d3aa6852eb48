import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { fixture } from "../helpers/paths.js";
import { Processor, readImageConfig, readVideoConfig } from "../../src/processing/processor.js";
import { ChatTemplate } from "../../src/processing/chat-template.js";
import { Tokenizer } from "../../src/processing/tokenizer.js";
import { QwenError } from "../../src/errors.js";

// Every bad input must be a QwenError whose message names the file or field at fault.
const MODEL = fixture("models", "tiny-qwen3-vl-dense");
const proc = Processor.fromDir(MODEL);
const tmp = mkdtempSync(join(tmpdir(), "qwen3vl-bad-"));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

const img = (image: string) => [{ role: "user", content: [{ type: "image", image }, { type: "text", text: "?" }] }];
const vid = (video: string) => [{ role: "user", content: [{ type: "video", video }, { type: "text", text: "?" }] }];

async function rejectsWith(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof QwenError, `expected QwenError, got ${String(e)}`);
    assert.match(e.message, re);
    return true;
  });
}

test("missing image file", async () => {
  await rejectsWith(proc.process(img("nope/missing.png"), { baseDir: tmp }), /image file not found: .*nope\/missing\.png/);
});

test("a directory given as an image", async () => {
  await rejectsWith(proc.process(img(tmp)), /image path is a directory/);
});

test("empty, truncated and garbage image files", async () => {
  const empty = join(tmp, "empty.png");
  writeFileSync(empty, "");
  await rejectsWith(proc.process(img(empty)), /image .*empty\.png is empty \(0 bytes\)/);
  const png = readFileSync(fixture("media", "img_300x170.png"));
  const trunc = join(tmp, "truncated.png");
  writeFileSync(trunc, png.subarray(0, Math.floor(png.length / 2)));
  await rejectsWith(proc.process(img(trunc)), /image .*truncated\.png cannot be decoded/);
  const junk = join(tmp, "junk.jpg");
  writeFileSync(junk, "definitely not an image");
  await rejectsWith(proc.process(img(junk)), /image .*junk\.jpg is not in a supported format/);
});

test("zero-size images", async () => {
  // A PNG whose header says width 0.
  const png = Buffer.from(readFileSync(fixture("media", "img_224x224.png")));
  png.writeUInt32BE(0, 16);
  const p = join(tmp, "zero.png");
  writeFileSync(p, png);
  await rejectsWith(proc.process(img(p)), /image .*zero\.png cannot be decoded/);
  // A BMP 0 x 5.
  const bmp = Buffer.alloc(54);
  bmp.write("BM", 0); bmp.writeUInt32LE(54, 10); bmp.writeUInt32LE(40, 14); bmp.writeInt32LE(0, 18); bmp.writeInt32LE(5, 22); bmp.writeUInt16LE(1, 26); bmp.writeUInt16LE(24, 28);
  const b = join(tmp, "zero.bmp");
  writeFileSync(b, bmp);
  await rejectsWith(proc.process(img(b)), /image .*zero\.bmp has zero size/);
});

test("aspect ratio above 200", async () => {
  const p = join(tmp, "thin.png");
  await sharp(Buffer.alloc(402 * 2 * 3, 128), { raw: { width: 402, height: 2, channels: 3 } }).png().toFile(p);
  await rejectsWith(proc.process(img(p)), /image .*thin\.png is 402x2 .*aspect ratio 201\.0 is larger than the supported 200/);
});

test("a video with fewer than 2 frames", async () => {
  const dir = join(tmp, "onefame");
  mkdirSync(dir);
  copyFileSync(fixture("media", "vid_8f_128x96_fps2", "frame_000.png"), join(dir, "frame_000.png"));
  await rejectsWith(proc.process(vid(dir)), /video .*onefame has 1 sampled frame\(s\); at least 2/);
  const empty = join(tmp, "noframes");
  mkdirSync(empty);
  await rejectsWith(proc.process(vid(empty)), /video frame folder .*noframes holds no frame images/);
  await rejectsWith(proc.process(vid("missing_clip.mp4"), { baseDir: tmp }), /video not found: .*missing_clip\.mp4/);
});

test("unknown content item type and malformed items", async () => {
  await rejectsWith(proc.process([{ role: "user", content: [{ type: "audio", audio: "x.wav" }] }]), /message 0 \("user"\), content item 0: unknown content item type "audio"/);
  await rejectsWith(proc.process([{ role: "user", content: [{ type: "text", text: "a" }, { type: "image" }] }]), /message 0 \("user"\), content item 1: an image item needs "image"/);
  await rejectsWith(proc.process([{ role: "user", content: [{ type: "video", video: "x", fps: -1 }] }]), /content item 0: "fps" must be a positive number/);
  await rejectsWith(proc.process([{ content: "hi" }]), /message 0 has no string "role"/);
  await rejectsWith(proc.process("hello" as unknown as unknown[]), /messages must be an array/);
});

test("more media items than placeholders, and the reverse", async () => {
  // A template that drops media: images given, no placeholder in the prompt.
  const textOnly = new ChatTemplate("{% for m in messages %}{% if m.content is string %}{{ m.content }}{% else %}{% for c in m.content %}{% if c.type == 'text' %}{{ c.text }}{% endif %}{% endfor %}{% endif %}{% endfor %}");
  const p2 = new Processor(Tokenizer.fromDir(MODEL), textOnly, readImageConfig(MODEL), readVideoConfig(MODEL));
  await rejectsWith(p2.process(img(fixture("media", "img_224x224.png"))), /the prompt has 0 image placeholder\(s\) \(<\|image_pad\|>\) but 1 image\(s\) were given/);
  await rejectsWith(p2.process(vid(fixture("media", "vid_8f_128x96_fps2"))), /the prompt has 0 video placeholder\(s\) \(<\|video_pad\|>\) but 1 video\(s\) were given/);
  // A placeholder typed into the text: more placeholders than images.
  await rejectsWith(
    proc.process([{ role: "user", content: [{ type: "image", image: fixture("media", "img_224x224.png") }, { type: "text", text: "<|image_pad|>" }] }]),
    /the prompt has 2 image placeholder\(s\) .* but 1 image\(s\) were given \(is the placeholder written in a text item\?\)/,
  );
});

test("a missing model directory", () => {
  assert.throws(() => Processor.fromDir(join(tmp, "no-model")), (e: unknown) => e instanceof QwenError && /model directory not found/.test(e.message));
});
