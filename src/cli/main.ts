import { createHash } from 'node:crypto';
import { fstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { ExitStatus, SpotifyBatchError, usageError } from '../core/errors.ts';
import type { NormalizedOptions } from '../core/options/normalize.ts';
import { normalizeS3Options } from '../core/options/s3.ts';
import { didYouMean } from '../core/suggest.ts';
import { packageVersion } from '../core/version.ts';
import type { EmulatorArgs } from './emulator.ts';
import type { PullArgs, UnlockArgs } from './flags.ts';
import { duration, examples, humanBytes, Log, NAME } from './output.ts';

// Only what parsing the command line needs is imported above. `--version` and `--help` (text
// rendered at build time) load nothing else, not even yargs and the flags. Each command imports
// its own stages when it runs (the pipeline and the HTTP client, the dry run, the emulator), and
// the pipeline loads the AWS SDK, zlib and the Parquet writer only for the outputs that use them
// (bench/README.md, "Startup").

/** The flag definitions (src/cli/flags.ts, which loads yargs): set by main() before any command. */
let flags: typeof import('./flags.ts');

const SIGNAL_STATUS = {
  SIGINT: ExitStatus.sigint,
  SIGTERM: ExitStatus.sigterm,
  SIGHUP: ExitStatus.sighup,
} as const;

/** How long a second signal waits for the aborts it sends before exiting. */
const SECOND_SIGNAL_GRACE_MS = 2_000;

const isCi = (env: NodeJS.ProcessEnv) =>
  env.CI !== undefined && env.CI !== '' && env.CI !== 'false';

/**
 * SIGINT, SIGTERM and SIGHUP (a closed terminal, a dropped ssh session) stop the run: requests
 * are cancelled and every staged output is discarded before the exit status says which signal.
 * A second signal exits at once, after sending the S3 aborts (at most 2 s). An uncaught error
 * discards the staged outputs too, then exits 1.
 */
function installExitHandlers(
  controller: AbortController,
  log: Log,
  { abandonActive, discardActive }: typeof import('../commit/commit.ts'),
): void {
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (interrupted) {
        const grace = new Promise((resolve) => setTimeout(resolve, SECOND_SIGNAL_GRACE_MS));
        void Promise.race([abandonActive(), grace]).then(() => process.exit(SIGNAL_STATUS[signal]));
        return;
      }
      interrupted = true;
      log.line(
        `${NAME}: ${signal}: stopping, discarding what this run staged (again to exit at once)`,
      );
      controller.abort(
        new SpotifyBatchError('ERR_INTERRUPTED', `interrupted by ${signal}`, {
          context: { signal },
        }),
      );
    });
  }
  const crash = (error: unknown) => {
    void discardActive(error)
      .catch(() => {})
      .then(() => {
        log.error(error);
        process.exit(ExitStatus.internal);
      });
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
}

/**
 * Stdout closed by the shell (`>&-`): Node opens /dev/null, read-write, in its place at start-up
 * (as a spawner does for an ignored stdout), where a redirect (`> /dev/null`) opens it write-only.
 * Linux tells the two apart (/proc/self/fdinfo); elsewhere the output goes to /dev/null unseen.
 */
function stdoutIsClosed(): boolean {
  try {
    const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/fdinfo/1', 'utf8'))?.[1];
    if (flags === undefined || (Number.parseInt(flags, 8) & 3) !== 2) return false;
    const out = fstatSync(1);
    return out.isCharacterDevice() && out.rdev === statSync('/dev/null').rdev;
  } catch {
    return false;
  }
}

/**
 * `--env-file`: its variables count for everything this process reads — the tool, and the AWS
 * SDK's own chains (profiles, region, endpoint, credentials) — as with `node --env-file`;
 * variables already set in the environment win.
 */
function loadEnvFile(path: string | undefined): NodeJS.ProcessEnv {
  if (path === undefined) return process.env;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw usageError(
      `option --env-file: cannot read ${path}: ${(cause as NodeJS.ErrnoException).code ?? cause}`,
    );
  }
  for (const [key, value] of Object.entries(parseEnv(text))) {
    if (process.env[key] === undefined) process.env[key] = value;
  }
  return process.env;
}

/** The logging flags, of whichever command has them. */
interface LogArgs {
  'log-format'?: string | undefined;
  quiet?: boolean | undefined;
  debug?: boolean | undefined;
  progress?: boolean | undefined;
  'progress-interval'?: unknown;
}

function logFor(args: LogArgs, command: 'pull' | 'check' | 'unlock'): Log {
  flags.checkScalars(args as Record<string, unknown>);
  const format = args['log-format'] ?? 'text';
  if (format !== 'text' && format !== 'json') {
    throw usageError(
      `option --log-format must be text or json, got ${format}${didYouMean(format, ['text', 'json'])}`,
    );
  }
  const json = format === 'json';
  const quiet = args.quiet ?? false;
  const interval = flags.progressInterval(args['progress-interval']);
  return new Log({
    json,
    quiet,
    debug: args.debug ?? false,
    // JSON logs go to a scheduler's log, where a long pull must show it is going on.
    progress:
      command === 'pull' &&
      (args.progress ??
        (json ? !quiet : process.stderr.isTTY === true && !quiet && !isCi(process.env))),
    ...(interval === undefined ? {} : { progressInterval: interval }),
  });
}

/** The options as the run will take them, and what only the CLI can check (its terminal). */
async function pullSetup(
  args: PullArgs,
): Promise<{ o: NormalizedOptions; env: NodeJS.ProcessEnv }> {
  if (args._[0] === 'replay') flags.refuseLiveOnly(args);
  const env = loadEnvFile(args['env-file']);
  // Loaded here: a replay may read its inputs' first lines for their markets (S3 included).
  const { resolveOptions } = await import('../run/options.ts');
  const o = await resolveOptions(flags.toOptions(args), env);
  const { out, format, gzip } = o.outputs;
  if (out === '-' && (format === 'parquet' || gzip) && process.stdout.isTTY && !args.force) {
    throw usageError(
      `${format === 'parquet' ? 'Parquet' : 'gzip'} is binary: redirect stdout to a file or a pipe, or pass --force to write it to the terminal`,
    );
  }
  return { o, env };
}

async function newReleases(args: PullArgs): Promise<void> {
  const log = logFor(args, 'pull');
  const controller = new AbortController();
  const [commit, { createStats }, { run }] = await Promise.all([
    import('../commit/commit.ts'),
    import('../core/stats.ts'),
    import('../pipeline.ts'),
  ]);
  installExitHandlers(controller, log, commit);
  const stats = createStats();
  let toStdout = false;
  try {
    const { o, env } = await pullSetup(args);
    toStdout = o.outputs.out === '-';
    // Nobody reads a closed stdout: found out before the run, so no lease, no token, no page;
    // the run's other outputs go with its data, so they are not written either.
    if (toStdout && stdoutIsClosed()) {
      const { planOutputs, runVars } = await import('../plan/plan.ts');
      const plan = planOutputs(o, runVars(new Date(), o.state.date));
      log.stdoutClosed(
        [plan.rejects, plan.raw, plan.report, plan.state].filter((l) => l !== undefined),
      );
      return;
    }
    log.startProgress(stats, o.source.maxItems);
    const report = await run(o, {
      signal: controller.signal,
      env,
      onEvent: (event) => log.event(event),
      stats,
    });
    if (controller.signal.aborted) {
      log.line(
        `${NAME}: the signal came while the outputs were being published: the run completed`,
      );
    }
    log.report(report);
    if (report.state?.error) {
      log.line(
        `${NAME}: error: the data was published but the state ${report.state.location} was not written (${report.state.error}): the next run will write this run's ${report.state.new} new albums again`,
      );
      process.exitCode = ExitStatus.sink;
    }
    if (report.marketsFailed.length > 0) {
      log.line(
        `${NAME}: error: ${report.marketsFailed.length} market(s) failed and were skipped: ${report.marketsFailed.map((f) => f.market).join(', ')}`,
      );
      process.exitCode = ExitStatus.partial;
    }
  } catch (error) {
    if (error instanceof SpotifyBatchError && error.code === 'ERR_INTERRUPTED') {
      // Say what the stop left behind: staged outputs are gone, stdout cannot take bytes back.
      error.message += !toStdout
        ? '; nothing was published'
        : stats.bytes > 0
          ? `; stdout had already received ${humanBytes(stats.bytes)}`
          : '; nothing was written';
    }
    process.exit(log.error(error).exitStatus);
  }
}

async function checkCommand(args: PullArgs): Promise<void> {
  const log = logFor(args, 'check');
  try {
    const { o, env } = await pullSetup(args);
    const { check } = await import('../check.ts');
    const report = await check(o, { env });
    if (args['log-format'] === 'json') {
      process.stderr.write(
        `${JSON.stringify({ time: new Date().toISOString(), event: 'check', ok: true, ...report })}\n`,
      );
      return;
    }
    const lines = [
      `Spotify: token ok; ${report.spotify.url} answered${report.spotify.total === null ? '' : ` (total ${report.spotify.total} albums)`}`,
      ...report.writable.map((w) => `writable: ${w}`),
      `plan: ${report.source.via}${report.source.query === null ? '' : ` "${report.source.query}"`}, ${report.markets.length === 0 ? "Spotify's default market" : `${report.markets.length} market(s): ${report.markets.join(', ')}`}`,
      `  first page${report.source.urls.length === 1 ? '' : 's'}: ${report.source.urls.join(' ')}`,
      `  ${report.model === 'star' ? 'star tables' : 'outputs'} (${report.outputs.length}, ${report.format}${report.gzip ? ', gzip' : ''}): ${report.outputs.join(' ')}`,
      `  rejects: ${report.rejects ?? 'none (a bad record fails the run)'}`,
      `  raw landing: ${report.raw ?? 'none'}`,
      `  report: ${report.report ?? 'none'}`,
      `  state: ${report.state === null ? 'none' : `${report.state} (lease ${report.state}.lease)`}`,
      `  manifest: ${report.manifest ?? 'none'}`,
      ...report.previous.removed.map(
        (p) =>
          `  will remove ${p.location} of run ${p.runId} (not written again; its pages stay in ${p.raw})`,
      ),
      ...report.previous.kept.map(
        (p) => `  will keep ${p.location} of run ${p.runId} (not written again, no raw copy)`,
      ),
      'ok: ready to run',
    ];
    writeQuietly(`${lines.join('\n')}\n`);
  } catch (error) {
    process.exit(log.error(error).exitStatus);
  }
}

/**
 * `spotify-batch unlock --state LOCATION [--force]`: one line saying what was removed (exit 0),
 * that there was no lease (exit 0), or why the lease stays (exit 8).
 */
async function unlockCommand(args: UnlockArgs): Promise<void> {
  const log = logFor(args, 'unlock');
  try {
    const env = loadEnvFile(args['env-file']);
    const given = {
      s3Endpoint: args['s3-endpoint'],
      s3ForcePathStyle: args['s3-force-path-style'],
      s3Region: args['s3-region'],
    };
    const s3 = normalizeS3Options(
      Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)),
      env,
    );
    const [{ unlock }, { describeHolder }] = await Promise.all([
      import('../state/unlock.ts'),
      import('../state/state.ts'),
    ]);
    const report = await unlock(args.state, { force: args.force ?? false, s3, env });
    if (args['log-format'] === 'json') {
      process.stderr.write(
        `${JSON.stringify({ time: new Date().toISOString(), event: 'unlock', ok: true, ...report })}\n`,
      );
      return;
    }
    const why = {
      'holder-gone': 'its process is gone',
      expired: 'it had expired',
      forced: '--force',
    };
    const age = report.ageSeconds === null ? '' : `, ${duration(report.ageSeconds)} old`;
    writeQuietly(
      report.holder === null || report.reason === null
        ? `${NAME}: no lease at ${report.location}: nothing to remove\n`
        : `${NAME}: removed the lease ${report.location} of ${describeHolder(report.holder)}${age}: ${why[report.reason]}\n`,
    );
  } catch (error) {
    process.exit(log.error(error).exitStatus);
  }
}

/**
 * Output of the commands that print and end (`--version`, `--help`, `markets`, `check`): into a
 * closed pipe (`| head -0`) they end quietly with 0, as yargs' own output does.
 */
function writeQuietly(text: string): void {
  process.stdout.once('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
  process.stdout.write(text);
}

/**
 * yargs reads a lone `-` after a flag as an unknown argument, not as the flag's value: `--out -`
 * (the documented way to say stdout) becomes `--out=-`, which it reads right.
 */
export function dashValues(argv: string[]): string[] {
  const out: string[] = [];
  for (const arg of argv) {
    const previous = out.at(-1);
    if (arg === '-' && previous?.startsWith('-') && previous !== '--' && !previous.includes('=')) {
      out[out.length - 1] = `${previous}=-`;
    } else {
      out.push(arg);
    }
  }
  return out;
}

const EXIT_STATUSES =
  'Exit statuses: 0 ok, 1 internal error, 2 usage/configuration, 3 Spotify rejected the credentials, 4 Spotify API error, 5 destination (S3/file) error, 6 bad record or bad replay input, 7 some markets skipped (--on-market-error skip), 8 the --state is in use by another run or changed under this one (spotify-batch unlock releases the lease of a run that is gone), 9 a missing --env-file (checked by Node itself), 10 --new-only over an output that exists, 129 SIGHUP, 130 SIGINT, 143 SIGTERM.';

const UNLOCK_STATUSES =
  'Exit statuses: 0 the lease was removed, or there was none; 2 usage; 5 destination (S3/file) error; 8 the holder may still be running (on this host, or another host that cannot be checked) and --force was not given, or the lease changed meanwhile: nothing was removed.';

export async function main(argv = process.argv): Promise<void> {
  // What yargs' hideBin does outside Electron: drop node and the script.
  const args = dashValues(argv.slice(2));
  // `--version` (or -v) alone is answered before yargs is loaded: yargs (and the Unicode width
  // tables its help layout uses) is most of what start-up costs.
  if (args.length === 1 && (args[0] === '--version' || args[0] === '-v')) {
    writeQuietly(`${packageVersion()}\n`);
    return;
  }
  // yargs answers `completion --help` with the script itself: say what the command does instead.
  if (args[0] === 'completion' && args.some((a) => a === '--help' || a === '-h')) {
    writeQuietly(
      'spotify-batch completion\n\nPrint a bash/zsh completion script for spotify-batch:\n  spotify-batch completion >> ~/.bashrc   (or ~/.zshrc), then open a new shell\n',
    );
    return;
  }
  const json = args.some(
    (a, i) => a === '--log-format=json' || (a === '--log-format' && args[i + 1] === 'json'),
  );
  const width = helpWidth();
  if (isHelp(args)) {
    const text = prerenderedHelp(new URL('.', import.meta.url))?.[helpKey(width, args)];
    if (text !== undefined) {
      writeQuietly(text);
      return;
    }
  }
  await runCommandLine(args, json, width);
}

/** Parses `args` with yargs and runs the command they name. */
async function runCommandLine(args: string[], json: boolean, width: number) {
  const [{ default: yargs }, loaded] = await Promise.all([import('yargs'), import('./flags.ts')]);
  flags = loaded;
  await commandLine(yargs, args, json, width).parseAsync();
}

/** The width yargs lays help out in: the terminal's, at most 110; 100 when not a terminal. */
const helpWidth = () => Math.min(110, process.stdout.columns || 100);

const COMMANDS = ['new-releases', 'replay', 'check', 'unlock', 'markets', 'emulator', 'completion'];
/** The widths help is rendered in at build time: piped (100), and a terminal of 110 or more. */
const PRERENDERED_WIDTHS = [100, 110];

/** `--help` alone, or after a command: answered from the text rendered at build time. */
function isHelp(args: string[]): boolean {
  const [first, second, ...rest] = args;
  const help = (a: string | undefined) => a === '--help' || a === '-h';
  return (
    rest.length === 0 &&
    (second === undefined ? help(first) : COMMANDS.includes(first ?? '') && help(second))
  );
}

const helpKey = (width: number, args: string[]) =>
  `${width} ${args.map((a) => (a === '-h' ? '--help' : a)).join(' ')}`;

/**
 * yargs' help for every command, rendered by `npm run build` (scripts/help.ts) into help.json
 * beside this module: `--help` then costs what `--version` costs (yargs and its Unicode width
 * tables are most of start-up, bench/RESULTS.md). It is used only while the modules it was
 * rendered from are unchanged (a build by `tsc` alone leaves an old help.json behind); absent,
 * stale, or at another terminal width, yargs renders the help.
 */
export function prerenderedHelp(dir: URL): Record<string, string> | undefined {
  try {
    const file = JSON.parse(readFileSync(new URL('help.json', dir), 'utf8')) as {
      sources: string;
      help: Record<string, string>;
    };
    return file.sources === helpSources(dir) ? file.help : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A digest of the compiled modules the help text comes from: the CLI's (commands, flags, the
 * emulator's flags) and core's (defaults, markets). `dir` is the CLI's directory (dist/src/cli/).
 */
export function helpSources(dir: URL): string {
  const hash = createHash('sha256');
  for (const sub of ['./', '../core/']) {
    const at = new URL(sub, dir);
    for (const name of readdirSync(at)
      .filter((n) => n.endsWith('.js'))
      .sort()) {
      hash
        .update(`${sub}${name}\0`)
        .update(readFileSync(new URL(name, at)))
        .update('\0');
    }
  }
  return hash.digest('hex');
}

/** What `--help` prints, for every command and pre-rendered width (scripts/help.ts). */
export async function renderHelp(): Promise<Record<string, string>> {
  const [{ default: yargs }, loaded] = await Promise.all([import('yargs'), import('./flags.ts')]);
  flags = loaded;
  const out: Record<string, string> = {};
  for (const width of PRERENDERED_WIDTHS) {
    for (const args of [['--help'], ...COMMANDS.map((c) => [c, '--help'])]) {
      out[helpKey(width, args)] = await new Promise<string>((resolve, reject) => {
        commandLine(yargs, args, false, width)
          .exitProcess(false)
          .parseAsync(args, {}, (error, _argv, output) =>
            error ? reject(error) : resolve(`${output}\n`),
          )
          .catch(reject);
      });
    }
  }
  return out;
}

/** The command line: commands, their flags, help, and how usage errors are reported. */
function commandLine(
  yargs: typeof import('yargs').default,
  args: string[],
  json: boolean,
  width: number,
) {
  return (
    yargs(args)
      .scriptName(NAME)
      // Numbers stay as typed; src/cli/flags.ts parses them strictly.
      .parserConfiguration({ 'parse-numbers': false, 'parse-positional-numbers': false })
      .usage(
        `$0 <command> [options]\n\nStream Spotify albums as one CSV row per (album, artist) to stdout, a file or S3.\nCredentials: SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET (or CLIENT_ID / CLIENT_SECRET, or --env-file).`,
      )
      .command(
        'new-releases',
        'Pull the new-releases list (or a search) and write the rows',
        (y) =>
          flags.grouped(flags.pullOptions(y)).epilog(
            `${examples([
              ['$0 new-releases --out - | head -3', 'CSV on stdout'],
              ['$0 new-releases --out albums.csv', 'a file: appears only when complete'],
              [
                '$0 new-releases --out s3://my-bucket/spotify/album_details.csv',
                'a multipart upload to S3',
              ],
              [
                [
                  '$0 new-releases --market SE,US',
                  "--out 's3://my-bucket/dt={date}/market={market}/albums.csv'",
                ],
                'one object per market, published together, then _manifest.json',
              ],
              [
                '$0 new-releases --model star --out star/',
                'dim_album, dim_artist, bridge_album_artist',
              ],
              [
                '$0 new-releases --via search --limit 10',
                'Development Mode apps (no new-releases since Feb 2026)',
              ],
            ])}\n\n${EXIT_STATUSES}`,
          ),
        (a) => newReleases(a as PullArgs),
      )
      .command(
        'replay',
        'Re-derive outputs from saved pages (--raw files) or JSON, without calling Spotify',
        (y) =>
          flags
            .replayOptions(y)
            .epilog(
              `${examples([
                [
                  [
                    '$0 replay --from raw/2026-11-25.ndjson.gz',
                    '--model star --format parquet --out star/',
                  ],
                  'yesterday’s pull again, as Parquet star tables',
                ],
              ])}\n\n${EXIT_STATUSES}`,
            ),
        (a) => newReleases(a as PullArgs),
      )
      .command(
        'check',
        'Dry run: a token, one page, every destination proven writable, and the plan',
        (y) =>
          flags
            .grouped(flags.pullOptions(y))
            .epilog(
              `${examples([
                [
                  [
                    '$0 check --market SE,US',
                    "--out 's3://my-bucket/dt={date}/market={market}/albums.csv'",
                  ],
                  'before scheduling a pull',
                ],
              ])}\n\n${EXIT_STATUSES}`,
            ),
        (a) => checkCommand(a as PullArgs),
      )
      .command(
        'unlock',
        'Release a --state lease left by a run that is gone (its process dead on this host; any lease with --force)',
        (y) =>
          flags.unlockOptions(y).epilog(
            `${examples([
              [
                'spotify-batch unlock --state s3://my-bucket/spotify/state.tsv',
                'after a run was killed (SIGKILL, out of memory) on this host',
              ],
              [
                'spotify-batch unlock --state s3://my-bucket/spotify/state.tsv --force',
                'a pod or VM that is gone: its lease, whoever holds it',
              ],
            ])}\n\n${UNLOCK_STATUSES}`,
          ),
        (a) => unlockCommand(a as UnlockArgs),
      )
      .command(
        'markets',
        'Print the markets --market accepts (ISO codes; all means every one)',
        (y) => y,
        async () => {
          const { SPOTIFY_MARKETS } = await import('../core/markets.ts');
          writeQuietly(`${SPOTIFY_MARKETS.join('\n')}\n`);
        },
      )
      .command(
        'emulator',
        'Run the local Spotify-compatible API (for offline runs and tests)',
        async (y) => (await import('./emulator.ts')).emulatorOptions(y),
        async (a) =>
          (await import('./emulator.ts'))
            .runEmulator(a as EmulatorArgs)
            .catch((error: unknown) =>
              process.exit(
                new Log({ json: false, quiet: false, progress: false, debug: false }).error(error)
                  .exitStatus,
              ),
            ),
      )
      .completion(
        'completion',
        'Print a bash/zsh completion script (spotify-batch completion >> ~/.bashrc)',
        // yargs offers each one-letter alias as a long flag too (--o, --m): only real flags.
        ((_current, _argv, defaults, done) =>
          defaults((_error, offered) =>
            done(flags.realCompletions(offered ?? [])),
          )) satisfies import('yargs').FallbackCompletionFunction,
      )
      .example([
        ['$0 emulator --port 8090', 'an offline Spotify'],
        ['$0 new-releases --out - | head -3', 'CSV on stdout'],
        ['$0 new-releases --out albums.parquet', 'a file'],
        ['$0 check --out s3://my-bucket/a.csv', 'a dry run'],
        ['$0 replay --from raw.ndjson.gz -o a.csv', 'saved pages'],
        ['$0 <command> --help', 'options by task'],
      ])
      .epilog('Every option, by task, with its default: docs/options.md (in the repository).')
      .demandCommand(
        1,
        'name a command: new-releases, replay, check, unlock, markets, emulator or completion (or --version)',
      )
      .recommendCommands()
      .strict()
      .help()
      .alias('help', 'h')
      .version()
      .alias('version', 'v')
      // English whatever LANG says: the help rendered at build time is English too.
      .locale('en')
      .wrap(width)
      .fail((message, error) => {
        const log = new Log({
          json,
          quiet: false,
          progress: false,
          debug: args.includes('--debug'),
        });
        // yargs reports some of its own checks (a flag without its value) as a YError.
        if (error && error.name !== 'YError') process.exit(log.error(error).exitStatus);
        message ||= error?.message ?? 'bad arguments';
        // A first word that is no command: said as such, not as its options being unknown
        // (yargs, finding no command, calls every flag after it unknown).
        const [first] = args;
        const text =
          first !== undefined && !first.startsWith('-') && !COMMANDS.includes(first)
            ? `unknown command ${first}${didYouMean(first, COMMANDS)}`
            : // yargs' messages can span lines: one line, in the project's words.
              (flags.usageMessage(message, args) ?? message.replace(/\s*\n+\s*/g, '; '));
        log.error(usageError(`${text} (see ${NAME} --help)`));
        process.exit(ExitStatus.usage);
      })
  );
}
