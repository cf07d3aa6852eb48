// Runs every compiled test file (dist/test/**/*.test.js) with Node's test runner; helper
// modules under dist/test are not test files. Extra arguments are passed to node --test.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? find(p) : e.name.endsWith(".test.js") ? [p] : [];
  });
}
const files = find("dist/test").sort();
if (files.length === 0) {
  console.error("no compiled tests under dist/test (run tsc first)");
  process.exit(1);
}
const r = spawnSync(process.execPath, ["--test", "--test-reporter=spec", ...process.argv.slice(2), ...files], { stdio: "inherit" });
process.exit(r.status ?? 1);
