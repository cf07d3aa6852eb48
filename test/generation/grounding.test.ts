import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import {
  parseGrounding,
  extractJson,
  repairJson,
  toPixelCoordinates,
  parseGroundingToPixels,
  drawGrounding,
  encodePng,
  savePng,
  boxPixelBounds,
  type RgbImage,
  type GroundingItem,
} from "../../src/generation/grounding.js";
import { QwenError } from "../../src/errors.js";

test("parse: fenced list of boxes, labels and extra fields", () => {
  const text = 'Here you go:\n```json\n[\n  {"bbox_2d": [10, 20, 300, 400], "label": "car"},\n  {"bbox_2d": [500, 500, 900, 950], "label": "dog", "score": 0.9}\n]\n```\nDone.';
  assert.deepEqual(parseGrounding(text), [
    { type: "box", bbox: [10, 20, 300, 400], label: "car", extra: {} },
    { type: "box", bbox: [500, 500, 900, 950], label: "dog", extra: { score: 0.9 } },
  ]);
});

test("parse variants: bare JSON, single object, trailing commas, single quotes, text around, points", () => {
  assert.deepEqual(parseGrounding('{"bbox_2d": [1, 2, 3, 4], "label": "x"}'), [{ type: "box", bbox: [1, 2, 3, 4], label: "x", extra: {} }]);
  assert.deepEqual(parseGrounding('[{"bbox_2d": [1, 2, 3, 4],},]'), [{ type: "box", bbox: [1, 2, 3, 4], extra: {} }]);
  assert.deepEqual(parseGrounding("The cat is at [{'point_2d': [250, 750], 'label': 'cat'}] in the picture."), [
    { type: "point", point: [250, 750], label: "cat", extra: {} },
  ]);
  assert.deepEqual(parseGrounding('```\n{"point_2d": ["12", "34"]}\n```'), [{ type: "point", point: [12, 34], extra: {} }]);
  // outermost {...} when free text surrounds an object; wrapper objects are searched
  assert.deepEqual(parseGrounding('Result: {"objects": [{"bbox_2d": [0, 0, 10, 10], "label": "a"}]} (1 object)'), [
    { type: "box", bbox: [0, 0, 10, 10], label: "a", extra: {} },
  ]);
  // a list cut off by the token limit keeps its complete objects
  assert.deepEqual(parseGrounding('```json\n[{"bbox_2d": [1, 1, 2, 2], "label": "a"}, {"bbox_2d": [3, 3, 4, 4], "label": "b"}, {"bbox_2d": [5, 5'), [
    { type: "box", bbox: [1, 1, 2, 2], label: "a", extra: {} },
    { type: "box", bbox: [3, 3, 4, 4], label: "b", extra: {} },
  ]);
  // entries without usable coordinates are skipped; no JSON at all -> []
  assert.deepEqual(parseGrounding('[{"bbox_2d": [1, 2, 3]}, {"label": "no box"}, {"bbox_2d": [1, 2, 3, "x"]}]'), []);
  assert.deepEqual(parseGrounding("I cannot see any car."), []);
  assert.equal(extractJson("nothing"), undefined);
  assert.equal(repairJson("{'a': None, 'b': [True, False,], \"c,]\": 1,}"), '{"a": null, "b": [true, false], "c,]": 1}');
});

test("mapping 0-1000 to pixels on a non-square image (640x480), ordering and clamping", () => {
  const items: GroundingItem[] = [
    { type: "point", point: [500, 500], extra: {} },
    { type: "box", bbox: [750, 900, 250, 100], extra: {} }, // corners swapped
    { type: "box", bbox: [-20, 500, 1100, 1000.5], extra: {} }, // out of range
  ];
  const px = toPixelCoordinates(items, 640, 480);
  assert.deepEqual(px[0], { type: "point", point: [320, 240], extra: {} });
  assert.deepEqual((px[1] as { bbox: number[] }).bbox, [160, 48, 480, 432]);
  assert.deepEqual((px[2] as { bbox: number[] }).bbox, [0, 240, 640, 480]);
  assert.deepEqual(parseGroundingToPixels('[{"point_2d": [1000, 0]}]', 300, 170), [{ type: "point", point: [300, 0], extra: {} }]);
  assert.deepEqual(toPixelCoordinates([{ type: "point", point: [999, 999], extra: {} }], 999, 999, { scale: 999 })[0], { type: "point", point: [999, 999], extra: {} });
  assert.throws(() => toPixelCoordinates(items, 0, 10), QwenError);
});

function testImage(w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const o = (y * w + x) * 3;
    data[o] = (x * 7) & 0xff;
    data[o + 1] = (y * 5) & 0xff;
    data[o + 2] = ((x + y) * 3) & 0xff;
  }
  return { width: w, height: h, data };
}

async function decode(png: Buffer): Promise<RgbImage> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 3);
  return { width: info.width, height: info.height, data: new Uint8Array(data) };
}

const px = (img: RgbImage, x: number, y: number): number[] => {
  const o = (y * img.width + x) * 3;
  return [img.data[o]!, img.data[o + 1]!, img.data[o + 2]!];
};

test("encodePng round-trips through an independent decoder (sharp/libvips)", async () => {
  for (const [w, h] of [[1, 1], [7, 3], [64, 48]] as const) {
    const img = testImage(w, h);
    const back = await decode(encodePng(img));
    assert.equal(back.width, w);
    assert.equal(back.height, h);
    assert.deepEqual(Buffer.from(back.data), Buffer.from(img.data));
  }
  assert.throws(() => encodePng({ width: 2, height: 2, data: new Uint8Array(5) }), QwenError);
});

test("drawn PNG: box edges in the box colour at the expected pixels, inside untouched, labels drawn", async () => {
  const W = 640, H = 480;
  const img = testImage(W, H);
  const items = parseGroundingToPixels('```json\n[{"bbox_2d": [250, 250, 750, 750], "label": "car"}, {"point_2d": [100, 900], "label": "p"}]\n```', W, H);
  const red: [number, number, number] = [255, 0, 0];
  const drawn = drawGrounding(img, items, { color: red, lineWidth: 3 });
  const dir = mkdtempSync(join(tmpdir(), "qwen-grounding-"));
  try {
    const file = join(dir, "out.png");
    await savePng(file, drawn);
    const back = await decode(readFileSync(file));
    // box [250,250,750,750] on 640x480 -> x 160..480, y 120..360 -> pixel columns 160..479, rows 120..359
    assert.deepEqual(boxPixelBounds((items[0] as { bbox: [number, number, number, number] }).bbox, W, H), { left: 160, top: 120, right: 479, bottom: 359 });
    for (const y of [150, 240, 350]) {
      for (const x of [160, 161, 162, 477, 478, 479]) assert.deepEqual(px(back, x, y), red, `edge ${x},${y}`);
      assert.deepEqual(px(back, 159, y), px(img, 159, y), "left of the box untouched");
      assert.deepEqual(px(back, 480, y), px(img, 480, y), "right of the box untouched");
      assert.deepEqual(px(back, 163, y), px(img, 163, y), "just inside the 3-px outline untouched");
    }
    for (const x of [200, 320, 470]) {
      for (const y of [120, 122, 357, 359]) assert.deepEqual(px(back, x, y), red, `edge ${x},${y}`);
      assert.deepEqual(px(back, x, 360), px(img, x, 360));
    }
    // well inside the box: untouched
    for (const [x, y] of [[320, 240], [200, 200], [400, 300]] as const) assert.deepEqual(px(back, x, y), px(img, x, y));
    // the point (100,900) -> (64, 432) is filled with the colour; the label tag for "car" sits above the box
    assert.deepEqual(px(back, 64, 432), red);
    let tagPixels = 0;
    for (let y = 100; y < 120; y++) for (let x = 160; x < 190; x++) if (px(back, x, y).join() !== px(img, x, y).join()) tagPixels++;
    assert.ok(tagPixels > 100, `label tag drawn (${tagPixels} changed pixels)`);
    // the source image itself is not modified
    assert.deepEqual(px(img, 160, 150), [(160 * 7) & 0xff, (150 * 5) & 0xff, ((160 + 150) * 3) & 0xff]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("boxes touching the image border are clipped, not wrapped", async () => {
  const img = testImage(50, 30);
  const items = toPixelCoordinates([{ type: "box", bbox: [0, 0, 1000, 1000], label: "all", extra: {} }], 50, 30);
  const drawn = drawGrounding(img, items, { color: [0, 255, 0], lineWidth: 1, labels: false });
  const back = await decode(encodePng(drawn));
  for (const [x, y] of [[0, 0], [49, 0], [0, 29], [49, 29], [25, 0], [25, 29], [0, 15], [49, 15]] as const) assert.deepEqual(px(back, x, y), [0, 255, 0]);
  assert.deepEqual(px(back, 25, 15), px(img, 25, 15));
});
