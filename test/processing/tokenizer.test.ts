import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fixture } from "../helpers/paths.js";
import { Tokenizer } from "../../src/processing/tokenizer.js";

// Exact comparison (ids and decoded strings) with processing/tokenizer_cases.json.
interface Case { text: string; ids: number[]; decoded: string }
const cases = (JSON.parse(readFileSync(fixture("processing", "tokenizer_cases.json"), "utf8")) as { cases: Case[]; tokenizer: { added_tokens: Record<string, number> } });
const tok = Tokenizer.fromDir(fixture("models", "tiny-qwen3-vl-dense"));

test("encode/decode reproduce every tokenizer case exactly", () => {
  assert.ok(cases.cases.length >= 11);
  for (const c of cases.cases) {
    assert.deepEqual(tok.encode(c.text), c.ids, `encode ${JSON.stringify(c.text)}`);
    assert.equal(tok.decode(c.ids), c.decoded, `decode ${JSON.stringify(c.text)}`);
  }
});

test("added tokens map to the reference ids both ways", () => {
  for (const [t, id] of Object.entries(cases.tokenizer.added_tokens)) {
    assert.equal(tok.tokenToId(t), id, t);
    assert.equal(tok.idToToken(id), t, t);
    assert.deepEqual(tok.encode(t), [id], `${t} is atomic`);
  }
});

test("skipSpecialTokens drops <|im_end|> etc. but keeps <think>/</think>", () => {
  const ids = tok.encode("<|im_start|>assistant\n<think>\nhm\n</think>\n\nok<|im_end|>");
  assert.equal(tok.decode(ids, { skipSpecialTokens: true }), "assistant\n<think>\nhm\n</think>\n\nok");
  assert.equal(tok.isSpecial(151645), true);
  assert.equal(tok.isSpecial(151667), false);
});

test("stream decoder reassembles every case token by token, never emitting a broken character", () => {
  for (const c of cases.cases) {
    const sd = tok.createStreamDecoder();
    let out = "";
    for (const id of c.ids) {
      const piece = sd.push(id);
      assert.ok(!piece.includes("\uFFFD"), `no replacement char in a streamed piece of ${JSON.stringify(c.text)}`);
      out += piece;
    }
    out += sd.flush();
    assert.equal(out, c.decoded);
  }
  // Skipping special tokens while streaming.
  const sd = tok.createStreamDecoder({ skipSpecialTokens: true });
  let s = "";
  for (const id of tok.encode("héllo 🤖<|im_end|>")) s += sd.push(id);
  s += sd.flush();
  assert.equal(s, "héllo 🤖");
});
