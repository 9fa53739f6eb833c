/**
 * Benchmark runner: `npm run bench -- <name> [args]` runs bench/<name>.ts; with no name, every
 * benchmark. Each prints its figures and, as its last line, one JSON object. The VM's host pauses
 * it for hundreds of ms at a time, so benchmarks interleave rounds and report min and median.
 */
import { readdirSync } from 'node:fs';

const [name, ...args] = process.argv.slice(2);
const all = readdirSync(new URL('.', import.meta.url))
  .filter((f) => f.endsWith('.ts') && !['run.ts', 'stats.ts'].includes(f))
  .map((f) => f.slice(0, -3))
  .sort();
const names = name && !name.startsWith('-') ? [name] : all;
for (const n of names) {
  if (!all.includes(n)) {
    console.error(`unknown benchmark ${JSON.stringify(n)}; available: ${all.join(', ')}`);
    process.exit(2);
  }
  const mod = (await import(`./${n}.ts`)) as { default: (args: string[]) => Promise<Record<string, unknown>> };
  const result = await mod.default(name ? args : []);
  console.log(JSON.stringify(result));
}
