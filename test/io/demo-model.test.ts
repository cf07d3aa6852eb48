// The demo model: created in an empty QWEN3VL_HOME with no network, loadable, answers a
// chat with an image, reused from the cache; its tokenizer encodes like the reference one.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import sharp from "sharp";
import { defaultModel } from "../../src/cli/default-model.js";
import { assetsDir, buildDemoTokenizerJson, demoModelDir, DEMO_VERSION, ensureDemoModel, QWEN3_VL_ADDED_TOKENS } from "../../src/io/demo-model.js";
import { parseConfig } from "../../src/model/config.js";
import { expectedTensors, parameterCount } from "../../src/model/tensor-names.js";
import { Qwen3VL } from "../../src/pipeline.js";
import { Tokenizer } from "../../src/processing/tokenizer.js";
import { fixture } from "../helpers/paths.js";

const home = mkdtempSync(join(tmpdir(), "qwen3vl-home-"));
after(() => rmSync(home, { recursive: true, force: true }));

const STRINGS = [
  "Hello, world!",
  "<|im_start|>user\nWhat is in this picture?<|im_end|>\n<|im_start|>assistant\n",
  "<|vision_start|><|image_pad|><|image_pad|><|vision_end|>Describe it.",
  "<think>\nLet me count: 12345 + 678 = 13023.\n</think>\n\nThe answer is 13023.",
  "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich\"}}\n</tool_call>",
  "Ünïcödé, 中文, 日本語, emoji 🙂🚀 and   spaces\t\ttabs\r\n",
  "<|box_start|>(10,20),(300,400)<|box_end|><|object_ref_start|>cat<|object_ref_end|><|endoftext|>",
  "<|fim_prefix|>def f(x):<|fim_suffix|>    return x<|fim_middle|><|repo_name|>a/b<|file_sep|><tool_response>ok</tool_response>",
  "it's they're we've I'm you'll he'd 'S 'T",
];

describe("demo model tokenizer", () => {
  const ref = Tokenizer.fromDir(fixture("models", "tiny-qwen3-vl-dense"));
  const refCfg = JSON.parse(readFileSync(fixture("models", "tiny-qwen3-vl-dense", "tokenizer_config.json"), "utf8")) as Record<string, unknown>;
  const demo = new Tokenizer(buildDemoTokenizerJson(), refCfg);

  it("encodes and decodes exactly like the reference tokenizer.json", () => {
    for (const s of STRINGS) {
      const ids = demo.encode(s);
      assert.deepEqual(ids, ref.encode(s), s);
      assert.equal(demo.decode(ids), ref.decode(ids), s);
      assert.equal(demo.decode(ids, { skipSpecialTokens: true }), ref.decode(ids, { skipSpecialTokens: true }), s);
    }
  });

  it("has the Qwen3-VL added tokens at their real ids, atomic, special as in the reference", () => {
    assert.equal(QWEN3_VL_ADDED_TOKENS.length, 26);
    for (const t of QWEN3_VL_ADDED_TOKENS) {
      assert.deepEqual(demo.encode(t.content), [t.id], t.content);
      assert.equal(ref.tokenToId(t.content), t.id);
      assert.equal(demo.isSpecial(t.id), ref.isSpecial(t.id), t.content);
    }
    assert.equal(demo.tokenToId("<|im_end|>"), 151645);
    assert.equal(demo.tokenToId("</think>"), 151668);
  });
});

describe("demo model checkpoint", () => {
  it("lives in $QWEN3VL_HOME/demo-v1, else ~/.cache/qwen3-vl/demo-v1", () => {
    assert.equal(demoModelDir({ QWEN3VL_HOME: "/x/y" }), join("/x/y", DEMO_VERSION));
    assert.ok(demoModelDir({}).endsWith(join(".cache", "qwen3-vl", DEMO_VERSION)));
    assert.equal(demoModelDir({ XDG_CACHE_HOME: "/c" }), join("/c", "qwen3-vl", DEMO_VERSION));
  });

  it("is created on first use (small, fast), loads, answers a chat with an image, and is reused", async () => {
    const saved = { home: process.env.QWEN3VL_HOME, model: process.env.QWEN3VL_MODEL };
    process.env.QWEN3VL_HOME = home;
    delete process.env.QWEN3VL_MODEL;
    const write = process.stderr.write;
    const notes: string[] = [];
    process.stderr.write = ((s: string) => { notes.push(String(s)); return true; }) as typeof process.stderr.write;
    let dir: string;
    const t0 = Date.now();
    try {
      dir = await defaultModel();
    } finally {
      process.stderr.write = write;
      if (saved.home === undefined) delete process.env.QWEN3VL_HOME; else process.env.QWEN3VL_HOME = saved.home;
      if (saved.model !== undefined) process.env.QWEN3VL_MODEL = saved.model;
    }
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(dir, join(home, DEMO_VERSION));
    assert.ok(seconds < 10, `creation took ${seconds} s`);
    assert.ok(notes.join("").includes("creating the demo model"));
    // atomic creation: nothing but the finished folder is left in the cache
    assert.deepEqual(readdirSync(home), [DEMO_VERSION]);
    for (const f of ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
      "chat_template.jinja", "preprocessor_config.json", "video_preprocessor_config.json", "demo.json"]) {
      assert.ok(existsSync(join(dir, f)), f);
    }
    const weights = statSync(join(dir, "model.safetensors")).size;
    assert.ok(weights < 100 * 1024 * 1024, `${weights} bytes`);
    assert.equal(readFileSync(join(dir, "chat_template.jinja"), "utf8"), readFileSync(fixture("templates", "qwen3_vl_instruct.jinja"), "utf8"));
    assert.equal(readFileSync(join(assetsDir(), "qwen3_vl_instruct.jinja"), "utf8"), readFileSync(join(dir, "chat_template.jinja"), "utf8"));
    const gen = JSON.parse(readFileSync(join(dir, "generation_config.json"), "utf8")) as { eos_token_id: number[] };
    assert.deepEqual(gen.eos_token_id, [151645, 151643]);
    const pre = JSON.parse(readFileSync(join(dir, "preprocessor_config.json"), "utf8")) as Record<string, any>;
    assert.deepEqual(pre.size, { longest_edge: 16777216, shortest_edge: 65536 });
    const vid = JSON.parse(readFileSync(join(dir, "video_preprocessor_config.json"), "utf8")) as Record<string, any>;
    assert.deepEqual([vid.size, vid.fps, vid.min_frames, vid.max_frames], [{ longest_edge: 25165824, shortest_edge: 4096 }, 2, 4, 768]);

    const cfg = parseConfig(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")));
    assert.equal(cfg.isMoe, false);
    assert.equal(cfg.tieWordEmbeddings, true);
    assert.equal(cfg.text.vocabSize, 151936);
    assert.deepEqual(cfg.vision.deepstackVisualIndexes, [1, 2, 3]);
    assert.equal(weights > 2 * parameterCount(expectedTensors(cfg)), true);

    const vl = await Qwen3VL.load(dir);
    const png = join(home, "picture.png");
    await sharp({ create: { width: 96, height: 64, channels: 3, background: { r: 200, g: 40, b: 90 } } }).png().toFile(png);
    const messages = [{ role: "user", content: [{ type: "image", image: png }, { type: "text", text: "What colour is this?" }] }];
    const r = await vl.chat(messages, { greedy: true, maxNewTokens: 6 });
    assert.equal(r.ids.length, 6);
    assert.equal(r.finishReason, "length");
    assert.equal(typeof r.text, "string");
    const again = await vl.chat(messages, { greedy: true, maxNewTokens: 6 });
    assert.deepEqual(again.ids, r.ids);
    const shipped = await vl.chat([{ role: "user", content: [{ type: "image", image: join(assetsDir(), "sample.png") }, { type: "text", text: "Hi" }] }], { greedy: true, maxNewTokens: 2 });
    assert.equal(shipped.ids.length, 2);
    assert.ok(statSync(join(assetsDir(), "sample.png")).size < 50 * 1024);

    // second use: the cached folder, untouched
    const mtime = statSync(join(dir, "model.safetensors")).mtimeMs;
    const second = ensureDemoModel({ dir });
    assert.equal(second.created, false);
    assert.equal(second.dir, dir);
    assert.equal(statSync(join(dir, "model.safetensors")).mtimeMs, mtime);
  });

  it("rebuilds a folder that lacks the completion marker, and is deterministic", () => {
    const a = ensureDemoModel({ dir: join(home, "a", DEMO_VERSION) });
    rmSync(join(a.dir, "demo.json"));
    const b = ensureDemoModel({ dir: a.dir });
    assert.equal(b.created, true);
    assert.ok(existsSync(join(a.dir, "demo.json")));
    const ref = readFileSync(join(home, DEMO_VERSION, "model.safetensors"));
    assert.ok(readFileSync(join(a.dir, "model.safetensors")).equals(ref));
  });

  it("two processes creating it at once both get the same complete folder", async () => {
    const dir = join(home, "race", DEMO_VERSION);
    const mod = new URL("../../src/io/demo-model.js", import.meta.url).href;
    const code = `import(${JSON.stringify(mod)}).then((m) => process.stdout.write(JSON.stringify(m.ensureDemoModel({ dir: ${JSON.stringify(dir)} }))))`;
    const one = () => new Promise<{ dir: string; created: boolean }>((res, rej) => {
      execFile(process.execPath, ["-e", code], (e, stdout) => (e ? rej(e) : res(JSON.parse(stdout))));
    });
    const [a, b] = await Promise.all([one(), one()]);
    assert.equal(a.dir, dir);
    assert.equal(b.dir, dir);
    assert.ok(a.created || b.created);
    assert.deepEqual(readdirSync(join(home, "race")), [DEMO_VERSION]);
    assert.ok(readFileSync(join(dir, "model.safetensors")).equals(readFileSync(join(home, DEMO_VERSION, "model.safetensors"))));
  });

  it("QWEN3VL_MODEL keeps priority over the demo", async () => {
    const saved = process.env.QWEN3VL_MODEL;
    process.env.QWEN3VL_MODEL = "/some/model";
    try {
      assert.equal(await defaultModel(), "/some/model");
    } finally {
      if (saved === undefined) delete process.env.QWEN3VL_MODEL; else process.env.QWEN3VL_MODEL = saved;
    }
  });
});
