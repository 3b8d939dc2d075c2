import { SpotifyBatchError, toSpotifyBatchError } from '../core/errors.ts';
import { MiB } from '../core/options.ts';
import { shellWord } from '../core/shell.ts';
import type { RunEvent, RunStats } from '../core/stats.ts';
import type { RunReport } from '../pipeline.ts';

export const NAME = 'spotify-batch';

/**
 * stderr may go away (`2>&1 | head -1`, a log shipper that died): a lost log line is not a lost
 * output, so write errors on it (EPIPE, EBADF) are ignored instead of crashing the run.
 */
process.stderr.on('error', () => {});

function write(text: string): void {
  if (!process.stderr.destroyed) process.stderr.write(text);
}

export function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < MiB) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / MiB).toFixed(1)} MiB`;
}

export const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

export function duration(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  const m = Math.floor(seconds / 60);
  return m < 60
    ? `${m} min ${Math.round(seconds % 60)} s`
    : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** The text summary: one line for the run, then one per output when there are several. */
export function summary(r: RunReport): string {
  const counts = [plural(r.pages, 'page'), plural(r.albums, 'album'), plural(r.rows, 'row')];
  // Several markets into one output: the albums another market had listed first.
  if (r.duplicates > 0) counts.push(`${plural(r.duplicates, 'duplicate')} dropped`);
  const one = r.outputs.length <= 1;
  const only = r.outputs[0];
  const target = !one
    ? plural(r.outputs.length, 'output')
    : r.location === '-'
      ? 'stdout'
      : r.location;
  const extra = [];
  if (one && only !== undefined && only.location !== '-') {
    extra.push(...describeOutput(only).slice(1));
    if (only.etag !== undefined) extra.push(`ETag ${only.etag}`);
  }
  if (r.retries) extra.push(`${r.retries} ${r.retries === 1 ? 'retry' : 'retries'}`);
  if (r.rateLimited)
    extra.push(`${r.rateLimited}× 429, waited ${(r.rateLimitWaitMs / 1000).toFixed(1)} s`);
  if (r.rate !== null) extra.push(`paced at ${r.rate} requests/s`);
  if (r.rejected) extra.push(`${r.rejected} rejected`);
  if (r.searchCapped) extra.push("stopped at Spotify's search cap of 1000");
  if (r.searchLimit !== null) extra.push(`search limit stepped down to ${r.searchLimit}`);
  if (r.outputClosed) {
    extra.push(
      `reader closed the output early${r.notWritten.length ? `, so not written: ${r.notWritten.join(', ')}` : ''}`,
    );
  }
  if (r.state !== null) {
    extra.push(
      `state: ${r.state.new} new, ${r.state.seen} seen before${r.state.droppedByTtl ? `, ${r.state.droppedByTtl} expired` : ''}`,
    );
  }
  if (r.raw !== null) extra.push(`raw ${r.raw}`);
  if (r.report !== null) extra.push(`report ${r.report}`);
  if (r.manifest !== null) extra.push(`manifest ${r.manifest}`);
  const head = `${NAME}: ${counts.join(', ')}, ${humanBytes(r.serializedBytes)} → ${target} in ${r.seconds.toFixed(2)} s${extra.length ? ` (${extra.join(', ')})` : ''}`;
  if (one) return head;
  return [head, ...r.outputs.map((o) => `  ${describeOutput(o).join(', ')}`)].join('\n');
}

/** `location: N rows, X stored, K parts` */
function describeOutput(o: RunReport['outputs'][number]): string[] {
  const parts = o.parts === undefined ? [] : [plural(o.parts, 'part')];
  return [
    `${o.location}: ${plural(o.rows, 'row')}`,
    ...(o.storedBytes === o.serializedBytes ? [] : [`${humanBytes(o.storedBytes)} stored`]),
    ...parts,
  ];
}

export function describeEvent(e: RunEvent): string {
  switch (e.event) {
    case 'retry': {
      // With several markets, which one's page failed (new-releases' country, search's market).
      const params = URL.canParse(e.url) ? new URL(e.url).searchParams : undefined;
      const market = params?.get('country') ?? params?.get('market');
      return `${NAME}: retrying${market ? ` market ${market}` : ''}: attempt ${e.attempt} failed: ${e.reason} (next try in ${(e.delayMs / 1000).toFixed(1)} s)`;
    }
    case 'lease-taken-over':
      return `${NAME}: took over the lease ${e.location} of run ${e.runId ?? '(unknown)'}, started ${e.startedAt ?? '(unknown)'}${e.host === null ? '' : ` on ${e.host} (pid ${e.pid})`}: ${e.reason === 'holder-gone' ? 'that process is gone (killed, or out of memory)' : 'the lease had expired'}`;
    case 'market-failed':
      return `${NAME}: market ${e.market} failed and is skipped: ${e.reason}`;
    case 'previous-output':
      return e.action === 'removed'
        ? `${NAME}: removed ${e.location} of run ${e.runId}: this run no longer writes it; its pages stay in ${e.raw}`
        : e.reason === 'not-replaced'
          ? `${NAME}: kept ${e.location} of run ${e.runId}: this run did not replace it; the manifest lists it with that run`
          : `${NAME}: kept ${e.location} of run ${e.runId}: this run no longer writes it, but no raw landing of its pages is kept (--raw), so it stays, listed with that run`;
    case 'abort-failed':
      return `${NAME}: warning: could not abort the multipart upload of ${e.location} (${e.reason}): its parts stay stored, and billed, until \`aws s3api abort-multipart-upload --bucket ${shellWord(e.bucket)} --key ${shellWord(e.key)} --upload-id ${shellWord(e.uploadId)}\` or a lifecycle rule (AbortIncompleteMultipartUpload) removes them; no object was written`;
    case 'rate-limited':
      return `${
        e.retryAfter === null
          ? `${NAME}: rate limited (429, no Retry-After): backing off`
          : e.retryAfter === 0
            ? `${NAME}: rate limited (429, Retry-After: 0): retrying now`
            : `${NAME}: rate limited (429): all requests pause ${e.retryAfter} s`
      }${e.rate === null ? '' : `, then pace at ${e.rate} requests/s`}`;
  }
}

/**
 * A command's examples for its help epilog, as a shell would take them: the purpose as a
 * comment, then the command, continued with `\` where it is long. yargs' own .example() lays
 * them out in two columns and breaks long commands (S3 URLs) mid-token, which cannot be pasted;
 * every line here fits an 80-column terminal (test/cli-layer.test.ts checks it).
 */
export function examples(list: [command: string | string[], purpose: string][]): string {
  const lines = list.flatMap(([command, purpose]) => {
    const parts = typeof command === 'string' ? [command] : command;
    return [
      `  # ${purpose}`,
      ...parts.map(
        (part, i) => `${i === 0 ? '  ' : '    '}${part}${i < parts.length - 1 ? ' \\' : ''}`,
      ),
    ];
  });
  return `Examples:\n${lines.join('\n')}`;
}

const CLEAR_LINE = '\r\u001b[2K';

export interface LogOptions {
  json: boolean;
  quiet: boolean;
  /** Progress: a live line on a terminal, or (JSON logs) a `progress` event every interval. */
  progress: boolean;
  debug: boolean;
  /** Seconds between JSON `progress` events. @default 10 */
  progressInterval?: number;
}

/**
 * Everything the CLI says on stderr. Text mode: lines for people, a progress line on a terminal
 * (cut to its width, erased before any other line). JSON mode: only JSON lines, each with an
 * ISO timestamp and an event name, the final report last.
 */
export class Log {
  readonly #o: LogOptions;
  #progress: (() => string) | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: LogOptions) {
    this.#o = options;
  }

  #json(event: string, body: object): void {
    write(`${JSON.stringify({ time: new Date().toISOString(), event, ...body })}\n`);
  }

  /** A line for people (text mode only), with the progress line erased first and redrawn after. */
  line(text: string): void {
    if (this.#o.json) return;
    write(`${this.#progress ? CLEAR_LINE : ''}${text}\n`);
    this.#draw();
  }

  /**
   * An event's line; --quiet keeps only what a scheduler's log must show: what a run left
   * behind (an upload it could not abort), and a lease taken from a run that is gone.
   */
  event(e: RunEvent): void {
    const { event, ...rest } = e;
    if (this.#o.json) this.#json(event, rest);
    else if (!this.#o.quiet || event === 'abort-failed' || event === 'lease-taken-over') {
      this.line(describeEvent(e));
    }
  }

  /** The run's report. */
  report(r: RunReport): void {
    this.stopProgress();
    if (this.#o.json) this.#json('report', { ok: true, ...r });
    else if (!this.#o.quiet) this.line(summary(r));
  }

  /**
   * A pull whose stdout was closed from the start (`>&-`), so it did not run; `notWritten`: its
   * other outputs (rejects, raw, report, state), which go with the data.
   */
  stdoutClosed(notWritten: string[]): void {
    if (this.#o.json) this.#json('report', { ok: true, stdoutClosed: true, notWritten });
    else {
      // Said even with --quiet: a scheduler's log must show that the run delivered nothing.
      const others = notWritten.length ? ` (not written either: ${notWritten.join(', ')})` : '';
      this.line(`${NAME}: stdout is closed: nothing was written${others}`);
    }
  }

  /** One line for the error (the stack and causes too with --debug); JSON: the failed report. */
  error(error: unknown): SpotifyBatchError {
    this.stopProgress();
    const err = toSpotifyBatchError(error);
    if (this.#o.json) {
      this.#json('report', {
        ok: false,
        code: err.code,
        exitStatus: err.exitStatus,
        message: err.message,
        context: err.context,
      });
      return err;
    }
    write(`${NAME}: error: ${err.message}\n`);
    if (this.#o.debug) {
      let cause: unknown = err;
      while (cause) {
        write(`${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}\n`);
        if (cause instanceof SpotifyBatchError && Object.keys(cause.context).length > 0) {
          write(`context: ${JSON.stringify(cause.context)}\n`);
        }
        cause = cause instanceof Error ? cause.cause : undefined;
        if (cause) write('caused by: ');
      }
    }
    return err;
  }

  /**
   * Redraws the progress line every 250 ms on a terminal, cut to its width; with JSON logs, a
   * `progress` event every interval, so a container's log shows a long pull going on.
   */
  startProgress(stats: RunStats, maxItems = Number.POSITIVE_INFINITY): void {
    if (!this.#o.progress) return;
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    if (this.#o.json) {
      this.#timer = setInterval(
        () => this.#json('progress', progress(stats, seconds(), maxItems)),
        (this.#o.progressInterval ?? 10) * 1000,
      );
      this.#timer.unref();
      return;
    }
    this.#progress = () => progressLine(stats, seconds(), maxItems);
    this.#timer = setInterval(() => this.#draw(), 250);
    this.#timer.unref();
  }

  stopProgress(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#progress === undefined) return; // JSON events: no line to erase
    this.#progress = undefined;
    write(CLEAR_LINE);
  }

  #draw(): void {
    if (this.#progress === undefined) return;
    const width = process.stderr.columns || 80;
    // One character short of the width: a line that fills it wraps on some terminals.
    write(`${CLEAR_LINE}${this.#progress().slice(0, Math.max(10, width - 1))}`);
  }
}

/** The numbers of a `progress` event (JSON logs); total and ETA are null until known. */
export function progress(stats: RunStats, seconds: number, maxItems = Number.POSITIVE_INFINITY) {
  const { total, rate } = pace(stats, seconds, maxItems);
  return {
    pages: stats.pages,
    albums: stats.albums,
    rows: stats.rows,
    bytes: stats.bytes,
    total: total ?? null,
    seconds: Math.round(seconds * 10) / 10,
    albumsPerSecond: Math.round(rate * 10) / 10,
    etaSeconds:
      total !== undefined && rate > 0 ? Math.ceil(Math.max(0, total - stats.albums) / rate) : null,
  };
}

/** How many albums the run will take (Spotify's total, or --max-items if fewer), and the rate. */
function pace(stats: RunStats, seconds: number, maxItems: number) {
  const rate = seconds > 0 ? stats.albums / seconds : 0;
  const listed = stats.totalAlbums ?? (Number.isFinite(maxItems) ? maxItems : undefined);
  return { total: listed === undefined ? undefined : Math.min(listed, maxItems), rate };
}

/** Albums so far, of how many the run will take (Spotify's total, or --max-items if fewer). */
export function progressLine(
  stats: RunStats,
  seconds: number,
  maxItems = Number.POSITIVE_INFINITY,
): string {
  const { total, rate } = pace(stats, seconds, maxItems);
  const of = total === undefined ? '' : ` of ${total.toLocaleString('en')}`;
  const eta =
    total !== undefined && rate > 0 ? ` · ETA ${duration((total - stats.albums) / rate)}` : '';
  return `${NAME}: ${stats.albums.toLocaleString('en')}${of} albums · ${stats.rows.toLocaleString('en')} rows · ${humanBytes(stats.bytes)} · ${Math.round(rate).toLocaleString('en')} albums/s${eta}`;
}
