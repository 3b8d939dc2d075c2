import { rmdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type ErrorCode, SpotifyBatchError, toSpotifyBatchError } from '../core/errors.ts';
import type { SinkResult, StagedSink } from '../core/sink.ts';
import type { Destinations, OpenOptions } from '../sinks/open.ts';

/** Runs whose outputs are still open, for the CLI's last-resort handlers (uncaught errors). */
const active = new Set<Commit>();

/** Discards the staged outputs of every run in this process that has not finished. */
export async function discardActive(reason: unknown): Promise<void> {
  await Promise.all([...active].map((commit) => commit.discardAll(reason)));
}

/**
 * The process exits next (a second signal): send the cleanup every open output needs now (S3
 * aborts), without waiting for the work in flight as a discard does.
 */
export async function abandonActive(): Promise<void> {
  await Promise.all([...active].map((commit) => commit.abandonAll()));
}

export interface Manifest {
  location: string;
  /** The manifest's text, from what was published (S3 ETags are known only then). */
  render(published: SinkResult[], after: SinkResult[]): string;
}

/**
 * The one owner of a run's outputs and of the run's two-phase commit:
 *
 * - phase one: every output is opened here and staged where no reader sees it (temp files beside
 *   their targets; S3 uploads whose final request is held);
 * - phase two, {@link publish}, only once every output is staged: the previous `_manifest.json`
 *   is deleted, every output published (the renames, the held requests released), the previous
 *   run's outputs this run no longer writes removed (only those its manifest listed), then the
 *   outputs that describe them (the incremental state), and the new manifest last.
 *
 * Anything else — an error, a signal, a crash handler via {@link discardActive}, or leaving the
 * `await using` scope — discards every output not yet published, so a failed run leaves the
 * destination as it was. No other code deletes or renames outputs.
 */
export class Commit implements AsyncDisposable {
  readonly #destinations: Destinations;
  /** Opened and neither published nor discarded yet. */
  readonly #open = new Set<StagedSink>();
  /** Directories made for outputs: the target's directory and the topmost one created. */
  readonly #created: { dir: string; top: string }[] = [];
  #discarding: Promise<void> | undefined;

  constructor(destinations: Destinations) {
    this.#destinations = destinations;
    active.add(this);
  }

  async open(location: string, options: OpenOptions): Promise<StagedSink> {
    if (this.#discarding) throw new Error('the run is being discarded');
    const { sink, createdDir } = await this.#destinations.open(location, options);
    this.#open.add(sink);
    if (createdDir !== undefined) this.#created.push({ dir: dirname(location), top: createdDir });
    return sink;
  }

  /** Throws some outputs away (a market skipped under `--on-market-error skip`). */
  async discard(sinks: StagedSink[], reason: unknown): Promise<void> {
    // Still open while being discarded: a second signal may have to abandon them.
    await Promise.all(
      sinks.map((sink) =>
        sink
          .discard(reason)
          .catch(() => {})
          .finally(() => this.#open.delete(sink)),
      ),
    );
  }

  /**
   * Phase two. `outputs` are published together (in parallel), after every one of them is
   * staged and the old manifest is gone; the manifest is written last. If some outputs fail to
   * publish, the error names which were published and which were not, and no manifest is written.
   * `remove` are the previous run's outputs this run replaces by nothing: each is deleted only
   * while it is still the version the run saw when it read the old manifest.
   */
  async publish(
    outputs: StagedSink[],
    {
      after = [],
      manifest,
      remove = [],
    }: {
      after?: StagedSink[];
      manifest?: Manifest | undefined;
      remove?: { location: string; version: string }[];
    } = {},
  ): Promise<{ results: SinkResult[]; after: SinkResult[]; afterError: SpotifyBatchError | null }> {
    await Promise.all([...outputs, ...after].map((sink) => sink.staged));
    // A manifest beside changed data would lie: it goes before the first output changes.
    if (manifest) await this.#destinations.delete(manifest.location);
    const settled = await Promise.allSettled(outputs.map((sink) => sink.publish()));
    for (const sink of outputs) this.#open.delete(sink);
    const failed = outputs.filter((_, i) => settled[i]?.status === 'rejected');
    if (failed.length > 0) {
      await this.discard(failed, new Error('not published'));
      throw partialPublish(outputs, settled);
    }
    const results = settled.map((r) => (r as PromiseFulfilledResult<SinkResult>).value);
    for (const old of remove) await this.#removeOld(old);
    // Published after the data (the incremental state): a failure here cannot take the data
    // back, so it is reported, not thrown — the next run will emit those albums again.
    const afterResults: SinkResult[] = [];
    let afterError: SpotifyBatchError | null = null;
    for (const sink of after) {
      try {
        afterResults.push(await sink.publish());
      } catch (error) {
        afterError ??= toSpotifyBatchError(error);
        await this.discard([sink], error);
      } finally {
        this.#open.delete(sink);
      }
    }
    if (manifest) {
      const sink = await this.open(manifest.location, {
        contentType: 'application/json',
        createDirs: true,
        flag: '--manifest',
      });
      sink.writable.end(manifest.render(results, afterResults));
      await sink.publish().catch((error: unknown) => {
        throw new SpotifyBatchError(
          toSpotifyBatchError(error).code,
          `every output was published but the manifest ${manifest.location} was not: ${toSpotifyBatchError(error).message}`,
          { cause: error },
        );
      });
      this.#open.delete(sink);
    }
    return { results, after: afterResults, afterError };
  }

  /** Discards every output not yet published (idempotent: concurrent callers share the work). */
  discardAll(reason: unknown): Promise<void> {
    this.#discarding ??= (async () => {
      await this.discard([...this.#open], reason);
      await this.#removeCreatedDirs();
    })();
    return this.#discarding;
  }

  /** Sends the cleanup each open output needs before the process exits (see StagedSink.abandon). */
  async abandonAll(): Promise<void> {
    await Promise.all([...this.#open].map((sink) => sink.abandon?.()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.discardAll(new Error('run ended'));
      await this.#destinations.close();
    } finally {
      active.delete(this);
    }
  }

  /**
   * Deletes an output of the previous run (listed in its manifest). One that changed since the
   * manifest was read is someone else's now: it stays, and the run says so instead of writing a
   * manifest that would not describe the folder.
   */
  async #removeOld({ location, version }: { location: string; version: string }): Promise<void> {
    if (await this.#destinations.deleteIf(location, version)) return;
    if ((await this.#destinations.version(location)) === null) return;
    throw new SpotifyBatchError(
      'ERR_SINK',
      `every output was published, but ${location}, which the previous manifest lists, changed since this run read it and was not removed; no manifest written`,
      { context: { path: location } },
    );
  }

  /** Removes the directories made for outputs, deepest first, as long as they are empty. */
  async #removeCreatedDirs(): Promise<void> {
    // Newest first: a directory made later may sit inside one made earlier.
    for (const { dir: start, top } of [...this.#created].reverse()) {
      for (let dir = start; ; dir = dirname(dir)) {
        const removed = await rmdir(dir).then(
          () => true,
          () => false,
        );
        if (!removed || dir === top || dir === dirname(dir)) break;
      }
    }
  }
}

/** Publishing failed part-way: say exactly what is out and what is not. */
function partialPublish(
  outputs: StagedSink[],
  settled: PromiseSettledResult<SinkResult>[],
): SpotifyBatchError {
  const published: string[] = [];
  const notPublished: string[] = [];
  const unpublished: string[] = [];
  let first: SpotifyBatchError | undefined;
  outputs.forEach((sink, i) => {
    const result = settled[i];
    if (result?.status === 'fulfilled') {
      published.push(sink.location);
    } else {
      const error = toSpotifyBatchError(result?.reason);
      first ??= error;
      notPublished.push(sink.location);
      unpublished.push(`${sink.location} (${error.message})`);
    }
  });
  const code: ErrorCode = first?.code ?? 'ERR_SINK';
  const message =
    published.length === 0
      ? `no output was published: ${unpublished.join('; ')}`
      : `publishing failed part-way, no manifest written: published ${published.join(', ')}; not published: ${unpublished.join('; ')}`;
  return new SpotifyBatchError(code, message, {
    cause: first,
    context: { published, notPublished },
  });
}
