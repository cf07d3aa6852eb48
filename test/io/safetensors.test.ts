// Bad checkpoint files must fail with the file name and the problem, never a crash.
import assert from "node:assert/strict";
import { copyFileSync, cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ReferenceBackend } from "../../src/backends/reference/index.js";
import { QwenError } from "../../src/errors.js";
import { SafetensorsFile } from "../../src/io/safetensors.js";
import { Qwen3VLModel } from "../../src/model/qwen3-vl.js";
import { fixture } from "../helpers/paths.js";

const tmp = mkdtempSync(join(tmpdir(), "qwen3vl-st-"));

function file(name: string, header: unknown, dataBytes: number, raw?: string): string {
  const json = raw ?? JSON.stringify(header);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const p = join(tmp, name);
  writeFileSync(p, Buffer.concat([len, Buffer.from(json), Buffer.alloc(dataBytes)]));
  return p;
}

function rejects(p: string, re: RegExp): void {
  assert.throws(() => SafetensorsFile.open(p), (e: unknown) => {
    assert.ok(e instanceof QwenError, `expected a QwenError, got ${String(e)}`);
    assert.match(e.message, re);
    assert.ok(e.message.includes(p), `message names the file: ${e.message}`);
    return true;
  });
}

describe("safetensors validation", () => {
  it("reads a valid file: dtypes, shapes, values", () => {
    const p = file("ok.safetensors", { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "BF16", shape: [2], data_offsets: [8, 12] }, c: { dtype: "I64", shape: [1], data_offsets: [12, 20] }, __metadata__: { format: "pt" } }, 24);
    const f = SafetensorsFile.open(p);
    assert.deepEqual([...f.readFloat32("a")], [0, 0]);
    assert.deepEqual(f.readInts("c"), [0]);
    assert.equal(f.metadata.format, "pt");
    f.close();
  });
  it("truncated file", () => {
    const p = join(tmp, "trunc.safetensors");
    writeFileSync(p, Buffer.from([1, 2, 3]));
    rejects(p, /truncated/);
    const q = join(tmp, "trunc2.safetensors");
    const full = readFileSync(fixture("models", "tiny-qwen3-vl-dense", "model.safetensors"));
    writeFileSync(q, full.subarray(0, 1000));
    rejects(q, /truncated/);
  });
  it("header offsets past the end", () => {
    rejects(file("past.safetensors", { a: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, 8), /past the end/);
  });
  it("overlapping tensors", () => {
    rejects(file("overlap.safetensors", { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } }, 16), /overlap/);
  });
  it("misaligned tensor (a hole before it)", () => {
    rejects(file("misaligned.safetensors", { a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "F32", shape: [1], data_offsets: [6, 10] } }, 16), /misaligned/);
  });
  it("unknown dtype", () => {
    rejects(file("dtype.safetensors", { a: { dtype: "F8_E4M3X", shape: [1], data_offsets: [0, 1] } }, 8), /unknown dtype/);
  });
  it("size that does not fit the shape", () => {
    rejects(file("size.safetensors", { a: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, 16), /needs 12/);
  });
  it("garbage header", () => {
    rejects(file("json.safetensors", null, 0, "{not json"), /not valid JSON/);
  });
});

describe("checkpoint validation", () => {
  const src = fixture("models", "tiny-qwen3-vl-dense");
  const copy = (name: string): string => {
    const d = join(tmp, name);
    cpSync(src, d, { recursive: true });
    return d;
  };
  const b = new ReferenceBackend();
  const fails = (dir: string, re: RegExp) =>
    assert.throws(() => Qwen3VLModel.load(dir, b), (e: unknown) => {
      assert.ok(e instanceof QwenError, String(e));
      assert.match(e.message, re);
      return true;
    });

  it("unknown model_type", () => {
    const d = copy("mt");
    const cfg = JSON.parse(readFileSync(join(d, "config.json"), "utf8"));
    cfg.model_type = "qwen2_5_vl";
    writeFileSync(join(d, "config.json"), JSON.stringify(cfg));
    fails(d, /model_type is "qwen2_5_vl"/);
  });
  it("wrong tensor shape for the config", () => {
    const d = copy("shape");
    const cfg = JSON.parse(readFileSync(join(d, "config.json"), "utf8"));
    cfg.text_config.intermediate_size = 96;
    writeFileSync(join(d, "config.json"), JSON.stringify(cfg));
    fails(d, /gate_proj\.weight has shape \[128, 64\] but the config needs \[96, 64\]/);
  });
  it("missing tensor", () => {
    const d = copy("missing");
    const cfg = JSON.parse(readFileSync(join(d, "config.json"), "utf8"));
    cfg.text_config.num_hidden_layers = 5;
    writeFileSync(join(d, "config.json"), JSON.stringify(cfg));
    fails(d, /missing tensor model\.language_model\.layers\.4\.input_layernorm\.weight/);
  });
  it("bad config field types", () => {
    const d = copy("field");
    const cfg = JSON.parse(readFileSync(join(d, "config.json"), "utf8"));
    cfg.text_config.hidden_size = "64";
    writeFileSync(join(d, "config.json"), JSON.stringify(cfg));
    fails(d, /text_config\.hidden_size: expected an integer, found "64"/);
  });
  it("missing weights", () => {
    const d = join(tmp, "noweights");
    cpSync(src, d, { recursive: true, filter: (s) => !s.endsWith(".safetensors") });
    fails(d, /no model\.safetensors/);
  });
  it("no config.json", () => {
    const d = join(tmp, "nocfg");
    cpSync(src, d, { recursive: true, filter: (s) => !s.endsWith("config.json") || s.endsWith("generation_config.json") });
    copyFileSync(join(src, "model.safetensors"), join(d, "model.safetensors"));
    fails(d, /has no config\.json/);
  });
  it("image token count that does not match the features", () => {
    const m = Qwen3VLModel.load(src, b);
    const s = m.newSession();
    const pixels = new Float32Array(16 * 1536);
    assert.throws(
      () => m.forward(s, { inputIds: [151652, 151655, 151655, 151655, 151653], images: { pixelValues: pixels, grids: [[1, 4, 4]] } }),
      /image token count does not match the features: the prompt has 3 <\|image_pad\|> tokens but the image grids \[\[1,4,4\]\] give 4 features/,
    );
    assert.throws(
      () => m.forward(s, { inputIds: [151652, 151655, 151655, 151655, 151655, 151653], images: { pixelValues: pixels.subarray(0, 15 * 1536), grids: [[1, 4, 4]] } }),
      /describe 16 patches but the pixel values have 15 rows/,
    );
  });
});
