#!/usr/bin/env node
// Builds the AssemblyScript kernels (assembly/kernels.ts) into two WebAssembly modules:
//   dist/wasm/kernels-simd.wasm     SIMD128 + threads
//   dist/wasm/kernels-relaxed.wasm  SIMD128 + relaxed SIMD + threads
// The memory is imported and shared; its declared maximum is 65536 pages (4 GiB), the wrapper creates
// each arena's memory with the size it needs and grows it.
import { spawnSync } from 'node:child_process';
import { mkdirSync, statSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'dist', 'wasm');
mkdirSync(outDir, { recursive: true });
const src = join(root, 'assembly', 'kernels.ts');
const require = createRequire(import.meta.url);
const ascBin = join(dirname(require.resolve('assemblyscript/package.json')), 'bin', 'asc.js');

const common = [src, '-O3', '--runtime', 'stub', '--noAssert', '--importMemory', '--sharedMemory',
  '--initialMemory', '2', '--maximumMemory', '65536', '--use', 'abort=', '--enable', 'simd', '--enable', 'threads'];
const builds = [
  { name: 'kernels-simd.wasm', extra: [] },
  { name: 'kernels-relaxed.wasm', extra: ['--enable', 'relaxed-simd'] },
];
for (const b of builds) {
  const out = join(outDir, b.name);
  if (existsSync(out) && statSync(out).mtimeMs > statSync(src).mtimeMs && !process.argv.includes('--force')) continue;
  const r = spawnSync(process.execPath, [ascBin, ...common, ...b.extra, '-o', out], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`build-wasm: asc failed for ${b.name}`);
    process.exit(r.status ?? 1);
  }
}
