import { test } from "node:test";
import assert from "node:assert/strict";
import { findStop, truncateAtStop, partialStopLength, StopStringStream } from "../../src/generation/stop.js";
import { QwenError } from "../../src/errors.js";

test("truncateAtStop removes the stop string and everything after it", () => {
  assert.deepEqual(truncateAtStop("Hello world. END and more END", ["END"]), { text: "Hello world. ", stop: "END" });
  assert.deepEqual(truncateAtStop("no stop here", ["END"]), { text: "no stop here" });
  // earliest occurrence wins across several stop strings; at the same offset the longest
  assert.deepEqual(truncateAtStop("a\n\nb STOP c", ["STOP", "\n\n"]), { text: "a", stop: "\n\n" });
  assert.deepEqual(findStop("xxABCD", ["AB", "ABC"]), { index: 2, stop: "ABC" });
  assert.equal(findStop("abc", []), null);
  assert.throws(() => truncateAtStop("x", [""]), QwenError);
});

test("partialStopLength: the longest suffix that could begin a stop string", () => {
  assert.equal(partialStopLength("Hello <|im", ["<|im_end|>"]), 4);
  assert.equal(partialStopLength("Hello <|im_end|", ["<|im_end|>"]), 9);
  assert.equal(partialStopLength("Hello", ["<|im_end|>"]), 0);
  assert.equal(partialStopLength("xaba", ["abac", "b"]), 3); // "aba" is a prefix of "abac"
  assert.equal(partialStopLength("abab", ["abac"]), 2); // "bab" is not; "ab" is
  assert.equal(partialStopLength("", ["x"]), 0);
});

function streamAll(deltas: string[], stops: string[]): { pieces: string[]; text: string; stop?: string } {
  const s = new StopStringStream(stops);
  const pieces: string[] = [];
  let stop: string | undefined;
  for (const d of deltas) {
    const r = s.push(d);
    pieces.push(r.text);
    if (r.stopped) {
      stop = r.stop;
      break;
    }
  }
  pieces.push(s.flush());
  return { pieces, text: pieces.join(""), stop };
}

test("streaming: a stop string split across several tokens cuts exactly and never leaks", () => {
  const r = streamAll(["The answer", " is 4", ".<", "|im", "_e", "nd|>", "garbage"], ["<|im_end|>"]);
  assert.equal(r.text, "The answer is 4.");
  assert.equal(r.stop, "<|im_end|>");
  for (const p of r.pieces) assert.ok(!p.includes("<"), `leaked ${JSON.stringify(p)}`);
  // a false start is released once it can no longer be a stop string
  const s = new StopStringStream(["<|im_end|>"]);
  assert.deepEqual(s.push("a <|i"), { text: "a ", stopped: false });
  assert.deepEqual(s.push("x"), { text: "<|ix", stopped: false });
  assert.equal(s.flush(), "");
  // held text is released at the end when no stop followed
  const t = new StopStringStream(["STOP"]);
  assert.deepEqual(t.push("abc ST"), { text: "abc ", stopped: false });
  assert.equal(t.flush(), "ST");
  // after stopping, later pushes yield nothing
  const u = new StopStringStream(["X"]);
  assert.equal(u.push("aXb").text, "a");
  assert.equal(u.push("more").text, "");
  assert.equal(u.stopped, true);
});

test("streaming equals one-shot truncation for every way of cutting the text into deltas", () => {
  const texts = ["Hello <|im_end|> tail", "abcSTOPdef", "no stop at all <|im", "x\n\ny", "🙂🙂STOP", "STST STOP"];
  const stops = ["<|im_end|>", "STOP", "\n\n"];
  for (const text of texts) {
    const want = truncateAtStop(text, stops).text;
    // every split into 3 parts
    for (let i = 0; i <= text.length; i++) {
      for (let j = i; j <= text.length; j++) {
        const r = streamAll([text.slice(0, i), text.slice(i, j), text.slice(j)], stops);
        assert.equal(r.text, want, `${JSON.stringify(text)} split at ${i},${j}`);
      }
    }
    // one character at a time
    assert.equal(streamAll([...text], stops).text, want);
  }
});

test("streaming never separates a surrogate pair from its partner", () => {
  const s = new StopStringStream(["\ude42X"]); // odd stop starting with the low surrogate of U+1F642
  const r = s.push("a🙂");
  // "🙂" ends with a low surrogate; holding only it would split the pair, so both units are held
  assert.equal(r.text, "a");
  assert.equal(s.flush(), "🙂");
});
