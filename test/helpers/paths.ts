import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

// Compiled tests live in dist/test/...; the repository root is found by walking up to package.json.
import { existsSync } from "node:fs";
function findRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(resolve(d, "package.json"))) {
    const p = dirname(d);
    if (p === d) throw new Error("repository root not found");
    d = p;
  }
  return d;
}
export const REPO_ROOT = findRoot();
/** The reference fixtures (override with QWEN3VL_FIXTURES). */
export const FIXTURES = process.env.QWEN3VL_FIXTURES ?? resolve(REPO_ROOT, "..", "shared", "fixtures");
export const fixture = (...p: string[]): string => resolve(FIXTURES, ...p);
