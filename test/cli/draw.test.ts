import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { drawAnswer } from "../../src/cli/generate.js";
import { loadImageFile } from "../../src/processing/image.js";
import { fixture } from "../helpers/paths.js";

it("--draw maps a model answer's 0-1000 box onto the first image (300x170, non-square) and saves a PNG", async () => {
  const out = join(mkdtempSync(join(tmpdir(), "qwen3vl-draw-")), "out.png");
  const messages = [{ role: "user", content: [{ type: "image", image: "../media/img_300x170.png" }, { type: "text", text: "find it" }] }];
  const answer = '```json\n[{"bbox_2d": [100, 200, 500, 800], "label": "thing"}]\n```';
  const items = await drawAnswer(answer, messages, fixture("cases"), out);
  assert.equal(items.length, 1);
  const box = items[0]!;
  assert.ok(box.type === "box");
  // x: /1000·300, y: /1000·170
  assert.deepEqual(box.bbox, [30, 34, 150, 136]);
  const src = await loadImageFile(fixture("media", "img_300x170.png"));
  const drawn = await loadImageFile(out);
  assert.equal(drawn.width, 300);
  assert.equal(drawn.height, 170);
  const px = (im: typeof src, x: number, y: number) => [...im.data.subarray((y * im.width + x) * 3, (y * im.width + x) * 3 + 3)];
  // the left edge at x = 30, halfway down the box, changed; the box centre and a far corner did not
  assert.notDeepEqual(px(drawn, 30, 85), px(src, 30, 85));
  assert.deepEqual(px(drawn, 90, 85), px(src, 90, 85));
  assert.deepEqual(px(drawn, 299, 0), px(src, 299, 0));
  await assert.rejects(drawAnswer(answer, messages, fixture("cases"), fixture("media", "img_300x170.png")), /overwrite the input image/);
});
