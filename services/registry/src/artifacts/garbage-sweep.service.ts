import { lstat, readdir, unlink } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { CLOCK, type Clock, LOGGER, METRICS_REGISTRY } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { RegistryConfig } from '../config.js';
import type { RegistryStore } from '../storage/registry-store.js';
import { REGISTRY_CONFIG, REGISTRY_STORE } from '../tokens.js';

/**
 * Removes what crashes leave in the artifact dir: files (artifacts, deltas, `*.tmp` of interrupted writes) that no
 * committed version or delta references and that are older than the grace period (REGISTRY_SWEEP_GRACE_MS), so a
 * version being written right now — its files exist before its row commits — is never touched. Runs at boot and
 * every REGISTRY_SWEEP_INTERVAL_MS; counts what it removed.
 */
@Injectable()
export class GarbageSweep implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | null = null;
  private readonly files: Counter;
  private readonly bytes: Counter;

  constructor(
    @Inject(REGISTRY_CONFIG) private readonly config: RegistryConfig,
    @Inject(REGISTRY_STORE) private readonly store: RegistryStore,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS_REGISTRY) metrics: Registry,
  ) {
    this.files = new Counter({
      name: 'edgefl_registry_swept_files_total',
      help: 'Unreferenced artifact, delta and temp files removed by the garbage sweep.',
      registers: [metrics],
    });
    this.bytes = new Counter({
      name: 'edgefl_registry_swept_bytes_total',
      help: 'Bytes of the files removed by the garbage sweep.',
      registers: [metrics],
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.sweep().catch((error: unknown) => this.logger.warn({ err: error }, 'garbage sweep failed'));
    this.timer = setInterval(() => {
      this.running ??= this.sweep()
        .catch((error: unknown) => this.logger.warn({ err: error }, 'garbage sweep failed'))
        .finally(() => (this.running = null));
    }, this.config.own.sweep.intervalMs);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass; returns what it removed. */
  async sweep(): Promise<{ files: number; bytes: number }> {
    const root = this.config.own.artifactDir;
    // the cut-off is taken before the referenced keys are read: a file older than it had its row committed by now
    const cutoff = this.clock.now() - this.config.own.sweep.graceMs;
    const referenced = await this.store.catalog.referencedBlobKeys();
    let files = 0;
    let bytes = 0;
    const visit = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw error;
      }
      for (const entry of entries) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) {
          await visit(path);
          continue;
        }
        if (!entry.isFile()) continue;
        const key = relative(root, path).split(sep).join('/');
        if (referenced.has(key)) continue;
        const info = await lstat(path).catch(() => null);
        if (!info || info.mtimeMs > cutoff) continue;
        try {
          await unlink(path);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw error;
        }
        files++;
        bytes += info.size;
      }
    };
    await visit(root);
    if (files > 0) {
      this.files.inc(files);
      this.bytes.inc(bytes);
      this.logger.info({ files, bytes }, 'garbage sweep removed unreferenced artifact files');
    }
    return { files, bytes };
  }
}
