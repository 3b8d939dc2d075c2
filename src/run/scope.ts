import type { Writable } from 'node:stream';
import { Commit } from '../commit/commit.ts';
import { abortReason, type SpotifyBatchError, toSpotifyBatchError } from '../core/errors.ts';
import type { PacingConfig } from '../core/options/pacing.ts';
import type { S3Options } from '../core/options/s3.ts';
import type { SpotifyAccess } from '../core/options/source.ts';
import type { OutVars } from '../core/options.ts';
import { createStats, type EventListener, type RunStats } from '../core/stats.ts';
import { runVars } from '../plan/plan.ts';
import type { RunReporter } from '../report/index.ts';
import { Destinations } from '../sinks/open.ts';
import { SpotifyClient } from '../sources/client.ts';

export interface RunContext {
  /** Aborting stops the run: requests are cancelled, every staged output is discarded. */
  signal?: AbortSignal;
  /** Environment for defaults (credentials, endpoints). @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Where `--out -` writes. @default process.stdout */
  stdout?: NodeJS.WritableStream;
  /** Told about retries and rate limits as they happen. */
  onEvent?: EventListener;
  /** Counters the run fills as it goes (read them for a progress display). @default fresh ones */
  stats?: RunStats;
}

/** When a run started: `performance.now()` for durations, the wall clock for names and dates. */
export interface RunClock {
  started: number;
  startedAt: Date;
}

export function startClock(): RunClock {
  return { started: performance.now(), startedAt: new Date() };
}

/**
 * What one run owns from its start to its end: its clock and template values, the controller
 * whose signal stops every request of the run, its counters, its destinations and the commit of
 * its outputs, the lease on its state, the report's observer and the Spotify client. Stages take
 * the part they use (each declares its own narrow interface, which a scope satisfies).
 *
 * Disposing of it ends the run in this order: stray requests stopped, the report's observer
 * stopped, the client's pool closed, the lease released, and last whatever was not published
 * discarded (src/commit/commit.ts), so the destination is left as it was.
 */
export class RunScope implements AsyncDisposable {
  readonly started: number;
  readonly startedAt: Date;
  /** `{date}` and `{run_id}`. */
  readonly vars: OutVars;
  readonly stats: RunStats;
  /** The caller's signal and the run's own: a failure anywhere stops every request. */
  readonly signal: AbortSignal;
  readonly destinations: Destinations;
  readonly commit: Commit;
  /** The caller's listener. */
  readonly onEvent: EventListener | undefined;
  readonly #controller = new AbortController();
  #lease: AsyncDisposable | undefined;
  #reporter: RunReporter | undefined;
  #client: SpotifyClient | undefined;
  /** Phase two has begun: from here on the run finishes publishing whatever happens. */
  #committing = false;

  constructor(
    { started, startedAt }: RunClock,
    { s3, date }: { s3: S3Options; date: string | undefined },
    context: RunContext,
  ) {
    this.started = started;
    this.startedAt = startedAt;
    this.vars = runVars(startedAt, date);
    this.stats = context.stats ?? createStats();
    this.onEvent = context.onEvent;
    this.signal = context.signal
      ? AbortSignal.any([context.signal, this.#controller.signal])
      : this.#controller.signal;
    this.destinations = new Destinations(
      s3,
      context.env ?? process.env,
      (context.stdout ?? process.stdout) as Writable,
      this.signal,
      context.onEvent,
    );
    this.commit = new Commit(this.destinations);
  }

  /**
   * The state's lease, held until the run ends: released before the commit's disposal discards
   * what was not published.
   */
  hold(lease: AsyncDisposable | undefined): void {
    if (this.#lease !== undefined) throw new Error('the run holds a lease already');
    this.#lease = lease;
  }

  /** The run's one Spotify client; `reporter` hears its events too, and stops with the run. */
  connect(
    access: SpotifyAccess,
    pacing: PacingConfig,
    reporter: RunReporter | undefined,
  ): SpotifyClient {
    if (this.#client !== undefined) throw new Error('the run has a Spotify client already');
    const listener = this.onEvent;
    const onEvent: EventListener | undefined =
      reporter === undefined
        ? listener
        : (event) => {
            reporter.event(event);
            listener?.(event);
          };
    this.#reporter = reporter;
    this.#client = new SpotifyClient({
      ...access,
      ...pacing,
      stats: this.stats,
      signal: this.signal,
      onEvent,
    });
    return this.#client;
  }

  get client(): SpotifyClient {
    if (this.#client === undefined) throw new Error('the run has no Spotify client yet');
    return this.#client;
  }

  /** The `--report` observer, when the run draws one. */
  get reporter(): RunReporter | undefined {
    return this.#reporter;
  }

  /** Stops every request of the run (a market's fatal failure stops the others). */
  abort(reason: SpotifyBatchError): void {
    this.#controller.abort(reason);
  }

  /** Called once nothing can stop the publishing any more (src/commit/publish.ts). */
  commitPoint(): void {
    this.#committing = true;
  }

  /**
   * The error the run fails with, once every request of it is stopped. A signal or another
   * market's failure explains the errors it caused downstream; once publishing started, its own
   * error says what is out, and a signal does not replace it.
   */
  failed(error: unknown): SpotifyBatchError {
    const failure = toSpotifyBatchError(
      this.signal.aborted && !this.#committing ? abortReason(this.signal.reason) : error,
    );
    this.#controller.abort(failure);
    return failure;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    // Nothing of this run may go on after it: stray requests end now, then the pool closes.
    this.#controller.abort();
    try {
      this.#reporter?.stop();
      await this.#client?.close().catch(() => {});
      // The lease goes before the commit's disposal, which discards what was not published
      // and then closes the destinations the lease is released through.
      await this.#lease?.[Symbol.asyncDispose]();
    } finally {
      await this.commit[Symbol.asyncDispose]();
    }
  }
}
