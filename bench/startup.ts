/**
 * Start-up (a section of `npm run bench`): `--version` and `--help` through the bin as installed
 * (its shebang applies), peak RSS (VmHWM) and wall time, against bare `node`, interleaved; what
 * importing undici, yargs and the AWS SDK costs, and whether a process then also holds the copy
 * of undici bundled in Node (global fetch).
 *
 *   npx node bench/startup.ts [--quick]
 */
import { bin, check, type Measured, measure, median, range } from './harness.ts';

export async function startupSection(quick: boolean): Promise<string> {
  const runs = quick ? 3 : 11;
  const node = process.execPath;
  const cases: { name: string; command: string; args: string[] }[] = [
    { name: 'bare `node -e 0`', command: node, args: ['-e', '0'] },
    { name: '`spotify-batch --version`', command: bin, args: ['--version'] },
    { name: '`spotify-batch --help`', command: bin, args: ['--help'] },
  ];
  const results = new Map<string, Measured[]>();
  // Interleaved, so load from other processes falls on every case alike.
  for (let i = 0; i < runs; i++) {
    for (const c of cases) {
      const m = await measure(c.command, c.args);
      results.set(c.name, [...(results.get(c.name) ?? []), m]);
    }
  }
  const imports: [string, string][] = [
    ['bare `node` (ESM entry)', '0'],
    ["`import('undici')` (the npm package's index)", "await import('undici')"],
    ["Node's bundled undici (`globalThis.fetch`)", 'globalThis.fetch; Headers'],
    ["`import('yargs')`", "await import('yargs')"],
    ["`import('@aws-sdk/client-s3')`", "await import('@aws-sdk/client-s3')"],
  ];
  const importRows: string[] = [];
  for (const [name, code] of imports) {
    const ms: Measured[] = [];
    for (let i = 0; i < Math.min(runs, 5); i++) {
      ms.push(
        await measure(node, ['--input-type=module', '-e', code]).catch(() => ({
          seconds: Number.NaN,
          rssMiB: Number.NaN,
          cpuSeconds: Number.NaN,
          internalUndici: false,
          stderr: '',
        })),
      );
    }
    importRows.push(
      `| ${name} | ${median(ms.map((m) => m.rssMiB)).toFixed(1)} | ${(median(ms.map((m) => m.seconds)) * 1000).toFixed(0)} | ${ms.some((m) => m.internalUndici) ? 'yes' : 'no'} |`,
    );
  }
  const row = (name: string) => {
    const ms = results.get(name) as Measured[];
    const rss = ms.map((m) => m.rssMiB);
    const ms_ = ms.map((m) => m.seconds * 1000);
    return {
      name,
      rss: median(rss),
      rssRange: range(rss, 1),
      wall: median(ms_),
      wallRange: range(ms_, 0),
    };
  };
  const rows = cases.map((c) => row(c.name));
  const version = rows[1] as ReturnType<typeof row>;
  const help = rows[2] as ReturnType<typeof row>;
  return `## Start-up (${runs} runs each, interleaved)

Through the bin as installed (\`dist/bin/spotify-batch.js\`, its shebang applies). Peak RSS is VmHWM (it counts the pages of the \`node\` binary the process touched, as the issue's numbers do, and includes bench/rss.mjs, the hook that reads it); wall time is spawn to exit.

| command | peak RSS MiB, median (min–max) | wall ms, median (min–max) |
| --- | --- | --- |
${rows.map((r) => `| ${r.name} | ${r.rss.toFixed(1)} (${r.rssRange}) | ${r.wall.toFixed(0)} (${r.wallRange}) |`).join('\n')}

| target | measured | |
| --- | --- | --- |
| \`--version\` ≤ 60 MiB and ≤ 100 ms | ${version.rss.toFixed(1)} MiB, ${version.wall.toFixed(0)} ms | ${check(version.rss <= 60 && version.wall <= 100)} |
| \`--help\` ≤ 60 MiB and ≤ 100 ms | ${help.rss.toFixed(1)} MiB, ${help.wall.toFixed(0)} ms | ${check(help.rss <= 60 && help.wall <= 100)} |

What one import costs (\`node --input-type=module -e …\`, ${Math.min(runs, 5)} runs, medians), and whether the process then holds Node's own bundled undici too:

| import | peak RSS MiB | wall ms | Node's bundled undici loaded |
| --- | --- | --- | --- |
${importRows.join('\n')}
`;
}

if (import.meta.main) console.log(await startupSection(process.argv.includes('--quick')));
