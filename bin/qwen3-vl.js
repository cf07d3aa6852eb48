#!/usr/bin/env node
import("../dist/src/cli/main.js").then((m) => m.main(process.argv.slice(2))).then(
  (code) => { process.exitCode = code ?? 0; },
  (e) => { process.stderr.write(`qwen3-vl: ${e?.message ?? e}\n`); process.exitCode = 1; },
);
