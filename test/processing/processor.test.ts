import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { assertPixels } from "../helpers/compare.js";
import { fixture } from "../helpers/paths.js";
import { SafetensorsFile } from "../../src/io/safetensors.js";
import { Processor } from "../../src/processing/processor.js";

// End to end for each model case in cases/: the conversation of <case>.messages.json (media
// paths relative to the cases folder) through the case's model directory. Rendered prompt,
// expanded text, input ids and grids must be identical; pixel values within one uint8 step
// after normalisation (1/127.5 + 1e-6); the share of differing elements is printed.
const TOL = 1 / 127.5 + 1e-6;
const CASES = ["dense_text_only", "dense_one_image", "dense_two_images", "dense_one_video", "moe_one_image", "dense_image_and_video"];

const comparePixels = (got: Float32Array, ref: Float32Array, label: string): void => assertPixels(got, ref, label, TOL);

let matched = 0;
for (const name of CASES) {
  test(`case ${name}: prompt, expanded text, ids, grids and pixels`, async () => {
    const meta = JSON.parse(readFileSync(fixture("cases", `${name}.json`), "utf8")) as {
      model: string; prompt_text: string; expanded_text: string; prompt_token_ids_before_expansion: number[];
      image_grid_thw?: number[][]; video_grid_thw?: number[][];
    };
    const messages = JSON.parse(readFileSync(fixture("cases", `${name}.messages.json`), "utf8")) as unknown[];
    const proc = Processor.fromDir(fixture(meta.model));
    const st = SafetensorsFile.open(fixture("cases", `${name}.safetensors`));
    const t0 = performance.now();
    const out = await proc.process(messages, { baseDir: fixture("cases") });
    const ms = performance.now() - t0;
    assert.equal(out.text, meta.prompt_text);
    assert.deepEqual(proc.tokenizer.encode(out.text), meta.prompt_token_ids_before_expansion);
    assert.equal(out.expandedText, meta.expanded_text);
    assert.deepEqual(out.inputIds, st.readInts("input_ids"));
    if (st.tensors.has("image_grid_thw")) {
      assert.ok(out.images);
      assert.deepEqual(out.images.grids.flat(), st.readInts("image_grid_thw"));
      assert.deepEqual(out.images.grids, meta.image_grid_thw);
      comparePixels(out.images.pixelValues, st.readFloat32("pixel_values"), `${name} pixel_values`);
    } else assert.equal(out.images, null);
    if (st.tensors.has("video_grid_thw")) {
      assert.ok(out.videos);
      assert.deepEqual(out.videos.grids.flat(), st.readInts("video_grid_thw"));
      assert.deepEqual(out.videos.grids, meta.video_grid_thw);
      comparePixels(out.videos.pixelValues, st.readFloat32("pixel_values_videos"), `${name} pixel_values_videos`);
    } else assert.equal(out.videos, null);
    console.log(`# ${name}: ${out.inputIds.length} ids, ${ms.toFixed(0)} ms`);
    matched++;
  });
}

test("all six cases matched", () => assert.equal(matched, CASES.length));

test("OpenAI image_url items (path, file://, data: URL) and per-item / per-request pixel bounds", async () => {
  const proc = Processor.fromDir(fixture("models", "tiny-qwen3-vl-dense"));
  const png = readFileSync(fixture("media", "img_300x170.png"));
  const ref = SafetensorsFile.open(fixture("processing", "image_processor.safetensors")).readFloat32("img_300x170.pixel_values_slow_pil");
  const urls = [
    "../media/img_300x170.png",
    new URL(`file://${fixture("media", "img_300x170.png")}`).href,
    `data:image/png;base64,${png.toString("base64")}`,
  ];
  for (const url of urls) {
    const out = await proc.process([{ role: "user", content: [{ type: "image_url", image_url: { url } }, { type: "text", text: "Describe this image." }] }], { baseDir: fixture("cases") });
    assert.deepEqual(out.images!.grids, [[1, 14, 22]]);
    comparePixels(out.images!.pixelValues, ref, `image_url ${url.slice(0, 30)}`);
  }
  // max_pixels on the item: 300x170 with at most 128*128 px -> smart resize gives 96x160.
  const small = await proc.process([{ role: "user", content: [{ type: "image", image: "../media/img_300x170.png", max_pixels: 16384, min_pixels: 1024 }] }], { baseDir: fixture("cases") });
  assert.deepEqual(small.images!.grids, [[1, 6, 10]]);
  assert.equal(small.inputIds.filter((i) => i === 151655).length, 15);
  // Per-request bound, overridden per item.
  const req = await proc.process(
    [{ role: "user", content: [{ type: "image", image: "../media/img_300x170.png" }, { type: "image", image: "../media/img_300x170.png", max_pixels: 65536 }] }],
    { baseDir: fixture("cases"), image: { minPixels: 1024, maxPixels: 16384 } },
  );
  // Second item: its own max 65536 with the request min 1024 -> 160x288.
  assert.deepEqual(req.images!.grids, [[1, 6, 10], [1, 10, 18]]);
});

test("video options: num_frames on the item, per-request fps, a list of frames", async () => {
  const proc = Processor.fromDir(fixture("models", "tiny-qwen3-vl-dense"));
  const base = { baseDir: fixture("media") };
  const a = await proc.process([{ role: "user", content: [{ type: "video", video: "vid_8f_128x96_fps2", num_frames: 4 }] }], base);
  assert.deepEqual(a.videos!.frameIndices, [[0, 2, 5, 7]]);
  assert.deepEqual(a.videos!.grids, [[2, 6, 8]]);
  // Frames 0,2 -> (0+1)/2 s; frames 5,7 -> (2.5+3.5)/2 = 3.0 s.
  assert.ok(a.expandedText.includes("<0.5 seconds><|vision_start|>") && a.expandedText.includes("<3.0 seconds><|vision_start|>"));
  const b = await proc.process([{ role: "user", content: [{ type: "video", video: "vid_8f_128x96_fps2" }] }], { ...base, video: { fps: 1 } });
  assert.deepEqual(b.videos!.frameIndices, [[0, 2, 5, 7]]); // int(8/2*1)=4 frames
  const frames = Array.from({ length: 8 }, (_, i) => `vid_8f_128x96_fps2/frame_00${i}.png`);
  const c = await proc.process([{ role: "user", content: [{ type: "video", video: frames, fps: 2 }, { type: "text", text: "?" }] }], base);
  const ref = SafetensorsFile.open(fixture("cases", "dense_one_video.safetensors")).readFloat32("pixel_values_videos");
  comparePixels(c.videos!.pixelValues, ref, "video as a list of frames");
  assert.deepEqual(c.videos!.timestamps, [[0.25, 1.25, 2.25, 3.25]]);
});
