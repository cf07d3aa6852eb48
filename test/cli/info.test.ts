// `qwen3-vl info`: counts and sizes from config.json + safetensors headers, for dense, MoE
// and sharded checkpoints, as a table and as JSON.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, describe, it } from "node:test";
import { describeCheckpoint, formatInfo, humanBytes, humanCount } from "../../src/cli/info.js";
import { demoConfig } from "../../src/io/demo-model.js";
import { writeSyntheticCheckpoint } from "../../src/io/synthetic.js";
import { parseConfig } from "../../src/model/config.js";
import { expectedTensors, parameterCount } from "../../src/model/tensor-names.js";
import { fixture, REPO_ROOT } from "../helpers/paths.js";

const run = promisify(execFile);
const BIN = join(REPO_ROOT, "bin", "qwen3-vl.js");
const tmp = mkdtempSync(join(tmpdir(), "qwen3vl-info-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

function counts(dir: string) {
  const cfg = parseConfig(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")));
  const specs = expectedTensors(cfg);
  return {
    cfg,
    total: parameterCount(specs),
    vision: parameterCount(specs.filter((s) => s.name.startsWith("model.visual."))),
    experts: parameterCount(specs.filter((s) => s.name.includes(".mlp.experts."))),
  };
}

describe("qwen3-vl info", () => {
  it("dense fixture: parameters split text/vision, sizes, tied head, dtype and bytes", () => {
    const dir = fixture("models", "tiny-qwen3-vl-dense");
    const i = describeCheckpoint(dir);
    const c = counts(dir);
    assert.equal(i.moe, false);
    assert.equal(i.model_type, "qwen3_vl");
    assert.equal(i.architecture, "Qwen3VLForConditionalGeneration");
    assert.equal(i.parameters.total, c.total);
    assert.equal(i.parameters.vision, c.vision);
    assert.equal(i.parameters.text, c.total - c.vision);
    assert.equal(i.parameters.active_per_token, c.total);
    assert.deepEqual([i.text.layers, i.text.hidden_size, i.text.heads, i.text.kv_heads, i.text.head_dim], [4, 64, 4, 2, 16]);
    assert.deepEqual([i.vision.depth, i.vision.hidden_size, i.vision.heads, i.vision.head_dim], [4, 32, 2, 16]);
    assert.deepEqual(i.vision.deepstack_visual_indexes, [1, 2, 3]);
    assert.equal(i.vocab_size, 151936);
    assert.equal(i.tie_word_embeddings, true);
    assert.deepEqual(Object.keys(i.dtypes), ["BF16"]);
    assert.equal(i.dtypes["BF16"]!.bytes, 2 * c.total);
    const size = statSync(join(dir, "model.safetensors")).size;
    assert.equal(i.weight_bytes, size);
    assert.deepEqual(i.shards, [{ file: "model.safetensors", bytes: size, tensors: 121 }]);
    assert.deepEqual([i.missing_tensors, i.unexpected_tensors], [[], []]);
    const text = formatInfo(i);
    for (const s of ["dense", "4 layers, hidden 64", "head_dim 16", "tied to the embeddings", "BF16", "model.safetensors", humanCount(c.total)]) {
      assert.ok(text.includes(s), `${s} in\n${text}`);
    }
  });

  it("MoE fixture: experts and active parameters per token", () => {
    const dir = fixture("models", "tiny-qwen3-vl-moe");
    const i = describeCheckpoint(dir);
    const c = counts(dir);
    assert.equal(i.moe, true);
    assert.equal(i.text.experts, c.cfg.text.numExperts);
    assert.equal(i.text.experts_per_token, c.cfg.text.numExpertsPerTok);
    assert.equal(i.parameters.total, c.total);
    assert.equal(i.parameters.active_per_token, c.total - c.experts + Math.round((c.experts * c.cfg.text.numExpertsPerTok) / c.cfg.text.numExperts));
    assert.ok(i.parameters.active_per_token < i.parameters.total);
    assert.match(formatInfo(i), /MoE[\s\S]*8 experts \(2 per token/);
  });

  it("sharded checkpoint with an untied head: every shard listed, totals add up", () => {
    const cfg = demoConfig() as Record<string, any>;
    cfg.tie_word_embeddings = false;
    cfg.text_config.tie_word_embeddings = false;
    cfg.text_config.vocab_size = 4096;
    const dir = join(tmp, "sharded");
    const w = writeSyntheticCheckpoint(dir, cfg, { shardBytes: 1 << 20 });
    const i = describeCheckpoint(dir);
    assert.ok(i.shards.length > 1);
    assert.deepEqual(i.shards.map((s) => s.file), w.files);
    assert.equal(i.weight_bytes, w.bytes);
    assert.equal(i.tie_word_embeddings, false);
    assert.equal(i.parameters.total, counts(dir).total);
    assert.ok(formatInfo(i).includes("separate (lm_head.weight)"));
  });

  it("CLI: --json, the table, --help and a one-line error", async () => {
    const dir = fixture("models", "tiny-qwen3-vl-dense");
    const j = await run(process.execPath, [BIN, "info", "--model", dir, "--json"]);
    assert.deepEqual(JSON.parse(j.stdout), JSON.parse(JSON.stringify(describeCheckpoint(dir))));
    const t = await run(process.execPath, [BIN, "info", "--model", dir]);
    assert.equal(t.stdout, formatInfo(describeCheckpoint(dir)));
    const h = await run(process.execPath, [BIN, "info", "--help"]);
    assert.match(h.stdout, /qwen3-vl info \[--model DIR\|REPO\] \[--json\]/);
    await assert.rejects(run(process.execPath, [BIN, "info", "--model", join(tmp, "nothing-here")]), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 1);
      assert.equal(e.stderr, `qwen3-vl info: model directory not found: ${join(tmp, "nothing-here")}\n`);
      return true;
    });
  });

  it("human-readable numbers", () => {
    assert.equal(humanCount(8_767_123_696), "8.77 B");
    assert.equal(humanCount(21_274_688), "21.27 M");
    assert.equal(humanBytes(42_563_072), "40.6 MiB");
    assert.equal(humanBytes(512), "512 B");
  });
});
