import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertPixels } from "../helpers/compare.js";
import { fixture } from "../helpers/paths.js";
import { SafetensorsFile } from "../../src/io/safetensors.js";
import { sampleFrameIndices, linspace } from "../../src/processing/frame-sampling.js";
import { format1f, calculateTimestamps, timestampText } from "../../src/processing/timestamps.js";
import { smartResizeVideo } from "../../src/processing/smart-resize.js";
import { framesSource, folderSource, fileSource, findFfmpeg, processVideo, openVideo } from "../../src/processing/video.js";
import type { RgbImage } from "../../src/processing/image.js";
import { QwenError } from "../../src/errors.js";

// Every video case of processing/processors.json: sampled indices, grids, timestamps and their
// strings identical; pixel values (where the fixture has the frames) within one uint8 step
// after normalisation (1/127.5 + 1e-6); the share of differing elements is printed.
const TOL = 1 / 127.5 + 1e-6;
interface VCase {
  input: { num_frames: number; width: number; height: number; metadata_fps: number | null; fps?: number | null; do_sample_frames?: boolean };
  sampled_frame_indices: number[];
  video_grid_thw: [number, number, number];
  pixel_values_videos_shape: [number, number];
  timestamps_seconds: number[];
  timestamp_strings: string[];
}
const cases = (JSON.parse(readFileSync(fixture("processing", "processors.json"), "utf8")) as { videos: Record<string, VCase> }).videos;
const st = SafetensorsFile.open(fixture("processing", "video_processor.safetensors"));

function framesFromTensor(name: string): RgbImage[] {
  const [t, h, w] = st.info(name).shape as [number, number, number, number];
  const all = st.readBytes(name);
  return Array.from({ length: t }, (_, i) => ({ width: w, height: h, data: all.slice(i * h * w * 3, (i + 1) * h * w * 3) }));
}

const compare = (got: Float32Array, ref: Float32Array, label: string): void => assertPixels(got, ref, label, TOL);

test("format1f is Python's f'{x:.1f}'", () => {
  const pairs: [number, string][] = [[0.25, "0.2"], [1.25, "1.2"], [2.25, "2.2"], [0.75, "0.8"], [3.25, "3.2"], [0.35, "0.3"], [0.45, "0.5"], [0.05, "0.1"], [0.15, "0.1"], [10.5, "10.5"], [0, "0.0"], [12.55, "12.6"], [4.35, "4.3"], [0.020833333333333332, "0.0"], [1e21, "1000000000000000000000.0"], [99.95, "100.0"], [-0.25, "-0.2"]];
  for (const [x, s] of pairs) assert.equal(format1f(x), s, String(x));
  assert.equal(timestampText(0.25), "<0.2 seconds>");
});

test("linspace matches numpy (endpoint exact)", () => {
  assert.deepEqual(linspace(0, 29, 6), [0, 5.8, 11.6, 17.4, 23.2, 29]);
  assert.deepEqual(linspace(0, 7, 1), [0]);
});

for (const [name, c] of Object.entries(cases)) {
  test(`video case ${name}: indices, grid, timestamps, strings`, async () => {
    const inp = c.input;
    const opts: { numFrames?: number } = {};
    // The num_frames case gives num_frames (the sampled count) and fps=null.
    const fixedN = "fps" in inp && inp.fps === null;
    if (fixedN) opts.numFrames = inp.num_frames;
    const total = fixedN ? 30 : inp.num_frames;
    const idx = inp.do_sample_frames === false ? Array.from({ length: total }, (_, i) => i) : sampleFrameIndices(total, inp.metadata_fps, opts);
    assert.deepEqual(idx, c.sampled_frame_indices);
    const [rh, rw] = smartResizeVideo(idx.length, inp.height, inp.width);
    const grid = [Math.ceil(idx.length / 2), rh / 16, rw / 16];
    assert.deepEqual(grid, c.video_grid_thw);
    assert.equal(grid[0]! * grid[1]! * grid[2]!, c.pixel_values_videos_shape[0]);
    const ts = calculateTimestamps(idx, inp.metadata_fps ?? 24);
    assert.deepEqual(ts, c.timestamps_seconds);
    assert.deepEqual(ts.map(timestampText), c.timestamp_strings);

    const key = `${name}.frames_uint8_THWC`;
    if (st.tensors.has(key)) {
      const src = framesSource(framesFromTensor(key), inp.metadata_fps, name);
      const out = await processVideo(src, inp.do_sample_frames === false ? { sampleFrames: false } : opts);
      assert.deepEqual(out.frameIndices, c.sampled_frame_indices);
      assert.deepEqual(out.grid, c.video_grid_thw);
      assert.deepEqual(out.grid, st.readInts(`${name}.video_grid_thw`));
      assert.deepEqual(out.timestampStrings, c.timestamp_strings);
      compare(out.pixelValues, st.readFloat32(`${name}.pixel_values_videos`), name);
    }
  });
}

test("the v8_fps2_no_sampling case (pre-sampled frames) gives the same pixels as v8_fps2", async () => {
  const src = framesSource(framesFromTensor("v8_fps2.frames_uint8_THWC"), 2, "v8");
  const out = await processVideo(src, { sampleFrames: false });
  compare(out.pixelValues, st.readFloat32("v8_fps2.pixel_values_videos"), "v8_fps2_no_sampling");
});

// The media/ clip is the one of the model case dense_one_video (not the processor fixture's clip).
const caseVideo = SafetensorsFile.open(fixture("cases", "dense_one_video.safetensors"));

test("frame folder in media/: fps from video.json; pixels match the dense_one_video case", async () => {
  const dir = fixture("media", "vid_8f_128x96_fps2");
  const src = await folderSource(dir);
  assert.equal(src.fps, 2);
  assert.equal(src.totalFrames, 8);
  const out = await processVideo(await openVideo(dir));
  assert.deepEqual(out.grid, caseVideo.readInts("video_grid_thw"));
  assert.deepEqual(out.timestampStrings, cases["v8_fps2"]!.timestamp_strings);
  compare(out.pixelValues, caseVideo.readFloat32("pixel_values_videos"), "folder vid_8f_128x96_fps2");
  // An fps given with the item overrides video.json.
  assert.equal((await folderSource(dir, 4)).fps, 4);
});

test("bad videos give QwenError", async () => {
  const one = framesSource(framesFromTensor("v8_fps2.frames_uint8_THWC").slice(0, 1), 2, "one.mp4");
  await assert.rejects(processVideo(one), (e: unknown) => e instanceof QwenError && /one\.mp4 has 1 sampled frame\(s\); at least 2/.test(e.message));
  await assert.rejects(openVideo("/nonexistent/clip.mp4"), (e: unknown) => e instanceof QwenError && /video not found: \/nonexistent\/clip\.mp4/.test(e.message));
  assert.throws(() => sampleFrameIndices(30, 24, { fps: 2, numFrames: 4 }), (e: unknown) => e instanceof QwenError && /either fps or num_frames/.test(e.message));
});

test("a real video file through ffmpeg: frame count, fps, size, sampling and (lossless) pixels", async (t) => {
  const ff = findFfmpeg();
  assert.ok(ff, "ffmpeg is available (npm package @ffmpeg-installer/ffmpeg is a dependency)");
  const tmp = mkdtempSync(join(tmpdir(), "qwen3vl-video-"));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  const file = join(tmp, "clip.mkv");
  // Lossless RGB (FFV1 in Matroska) at 2 fps from the fixture frames.
  const r = spawnSync(ff, ["-v", "error", "-y", "-framerate", "2", "-i", join(fixture("media", "vid_8f_128x96_fps2"), "frame_%03d.png"), "-c:v", "ffv1", "-pix_fmt", "bgr0", file]);
  assert.equal(r.status, 0, r.stderr?.toString());
  const src = await fileSource(file);
  assert.deepEqual([src.totalFrames, src.fps, src.width, src.height], [8, 2, 128, 96]);
  const out = await processVideo(src);
  assert.deepEqual(out.frameIndices, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(out.grid, [4, 6, 8]);
  assert.deepEqual(out.timestampStrings, cases["v8_fps2"]!.timestamp_strings);
  compare(out.pixelValues, caseVideo.readFloat32("pixel_values_videos"), "ffv1 file from the media/ frames");
  // A lossy 24 fps mp4 (30 frames): frame count/size/fps and sampling like v30_fps24.
  const mp4 = join(tmp, "clip.mp4");
  const r2 = spawnSync(ff, ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=24:duration=1.25", "-pix_fmt", "yuv420p", "-c:v", "libx264", mp4]);
  assert.equal(r2.status, 0, r2.stderr?.toString());
  const s2 = await fileSource(mp4);
  assert.deepEqual([s2.totalFrames, s2.fps, s2.width, s2.height], [30, 24, 64, 64]);
  const o2 = await processVideo(s2);
  assert.deepEqual(o2.frameIndices, cases["v30_fps24_default_sampling"]!.sampled_frame_indices);
  assert.deepEqual(o2.grid, cases["v30_fps24_default_sampling"]!.video_grid_thw);
  assert.deepEqual(o2.timestampStrings, cases["v30_fps24_default_sampling"]!.timestamp_strings);
  // Not a video.
  const bogus = join(tmp, "bogus.mp4");
  (await import("node:fs")).writeFileSync(bogus, "this is not a video");
  await assert.rejects(fileSource(bogus), (e: unknown) => e instanceof QwenError && /cannot read video .*bogus\.mp4/.test(e.message));
});
