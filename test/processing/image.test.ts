import { test } from "node:test";
import assert from "node:assert/strict";
import { fixture } from "../helpers/paths.js";
import { SafetensorsFile } from "../../src/io/safetensors.js";
import { loadImageFile, processImage, decodeImage, compositeOverWhite } from "../../src/processing/image.js";
import { resizeBicubic } from "../../src/processing/bicubic.js";

// Pixel values from the PNGs in media/ against `pixel_values_slow_pil` (Pillow bicubic path):
// every element within one uint8 step after normalisation (1/127.5) + 1e-6; grids identical.
// The share of elements that differ at all is printed (the target is 0).
const TOL = 1 / 127.5 + 1e-6;
const st = SafetensorsFile.open(fixture("processing", "image_processor.safetensors"));
const names = [...st.tensors.keys()].filter((k) => k.endsWith(".image_grid_thw")).map((k) => k.slice(0, -".image_grid_thw".length));

test("image fixtures exist", () => assert.equal(names.length, 4));

for (const name of names) {
  test(`${name}: decoded RGB exact, pixel_values within one uint8 step of the PIL reference`, async () => {
    const img = await loadImageFile(fixture("media", `${name}.png`));
    const rgbRef = st.readBytes(`${name}.rgb_uint8_HWC`);
    assert.deepEqual([img.height, img.width, 3], st.info(`${name}.rgb_uint8_HWC`).shape);
    assert.ok(Buffer.from(img.data).equals(Buffer.from(rgbRef)), "decoded RGB identical to the reference source");
    const t0 = performance.now();
    const out = processImage(img);
    const ms = performance.now() - t0;
    assert.deepEqual(out.grid, st.readInts(`${name}.image_grid_thw`));
    const ref = st.readFloat32(`${name}.pixel_values_slow_pil`);
    assert.equal(out.pixelValues.length, ref.length);
    let maxDiff = 0, differing = 0;
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(out.pixelValues[i]! - ref[i]!);
      if (d > maxDiff) maxDiff = d;
      if (d !== 0) differing++;
    }
    console.log(`# ${name}: grid ${out.grid.join("x")}, max |diff| ${maxDiff}, differing elements ${differing}/${ref.length} (${((100 * differing) / ref.length).toFixed(4)}%), ${ms.toFixed(1)} ms`);
    assert.ok(maxDiff <= TOL, `max diff ${maxDiff} > ${TOL}`);
  });
}

test("resizeBicubic: same size is a copy; constant images stay constant; upscale/downscale sizes", () => {
  const src = new Uint8Array(5 * 4 * 3).fill(77);
  assert.deepEqual(resizeBicubic(src, 5, 4, 3, 5, 4), src);
  for (const [w, h] of [[13, 7], [2, 2], [40, 33]] as const) {
    const r = resizeBicubic(src, 5, 4, 3, w, h);
    assert.equal(r.length, w * h * 3);
    assert.ok(r.every((v) => v === 77));
  }
});

test("alpha is composited over white like Pillow; grey and palette PNGs become RGB", async () => {
  // Pillow: alpha_composite(white, RGBA) -> fully transparent = white, opaque = itself; the
  // partial values are worked by hand from its integer formula (7 extra bits, rounded /255).
  const rgba = new Uint8Array([10, 20, 30, 0, 10, 20, 30, 255, 0, 0, 0, 128, 200, 100, 50, 64]);
  const rgb = compositeOverWhite(rgba, 4, 1);
  assert.deepEqual([...rgb], [255, 255, 255, 10, 20, 30, 127, 127, 127, 241, 216, 204]);
  const sharp = (await import("sharp")).default;
  const grey = await sharp(Buffer.alloc(6, 90), { raw: { width: 3, height: 2, channels: 1 } }).png().toBuffer();
  const g = await decodeImage(grey, "grey.png");
  assert.deepEqual([g.width, g.height], [3, 2]);
  assert.ok(g.data.every((v) => v === 90));
  const la = await sharp(Buffer.from([0, 0, 0, 0, 0, 255]), { raw: { width: 3, height: 1, channels: 2 } }).png().toBuffer();
  const l = await decodeImage(la, "la.png");
  assert.deepEqual([...l.data], [255, 255, 255, 255, 255, 255, 0, 0, 0]);
});

test("JPEG EXIF orientation is applied; WebP, GIF and BMP decode", async () => {
  const sharp = (await import("sharp")).default;
  // A 4x2 image, left half red, right half blue, stored with orientation 6 (rotate 90 CW on display).
  const px = Buffer.alloc(4 * 2 * 3);
  for (let y = 0; y < 2; y++) for (let x = 0; x < 4; x++) px.set(x < 2 ? [255, 0, 0] : [0, 0, 255], (y * 4 + x) * 3);
  const jpg = await sharp(px, { raw: { width: 4, height: 2, channels: 3 } }).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
  const j = await decodeImage(jpg, "o6.jpg");
  assert.deepEqual([j.width, j.height], [2, 4], "rotated to portrait");
  assert.ok(j.data[2]! < 100 && j.data[0]! > 150, "top rows red after rotation"); // top = old left
  assert.ok(j.data[(3 * 2) * 3 + 2]! > 150, "bottom rows blue");
  const webp = await sharp(px, { raw: { width: 4, height: 2, channels: 3 } }).webp({ lossless: true }).toBuffer();
  const w = await decodeImage(webp, "x.webp");
  assert.ok(Buffer.from(w.data).equals(px));
  const gif = await sharp(px, { raw: { width: 4, height: 2, channels: 3 } }).gif().toBuffer();
  const gi = await decodeImage(gif, "x.gif");
  assert.deepEqual([gi.width, gi.height], [4, 2]);
  // 24-bit bottom-up BMP, 3x2.
  const rowBytes = 12, w3 = 3, h2 = 2;
  const bmp = Buffer.alloc(54 + rowBytes * h2);
  bmp.write("BM", 0); bmp.writeUInt32LE(bmp.length, 2); bmp.writeUInt32LE(54, 10); bmp.writeUInt32LE(40, 14);
  bmp.writeInt32LE(w3, 18); bmp.writeInt32LE(h2, 22); bmp.writeUInt16LE(1, 26); bmp.writeUInt16LE(24, 28);
  for (let y = 0; y < h2; y++) for (let x = 0; x < w3; x++) { const o = 54 + (h2 - 1 - y) * rowBytes + x * 3; bmp[o] = x; bmp[o + 1] = y; bmp[o + 2] = 200; }
  const b = await decodeImage(bmp, "x.bmp");
  assert.deepEqual([...b.data], [200, 0, 0, 200, 0, 1, 200, 0, 2, 200, 1, 0, 200, 1, 1, 200, 1, 2]);
});
