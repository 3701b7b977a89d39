import { createHash } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { replaceAtomically } from './fs-atomic.js';

/** One installed model version: the verified file and the signed manifest that vouched for it. */
export interface InstalledModel {
  modelId: string;
  version: number;
  sha256: string;
  sizeBytes: number;
  /** File name inside the store directory. */
  file: string;
  format: 'onnx' | 'artifact';
  releaseId: string | null;
  installedAt: number;
}

const Installed = z
  .object({
    modelId: z.string().min(1).max(256),
    version: z.number().int().min(1),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    sizeBytes: z.number().int().min(0),
    file: z.string().regex(/^[A-Za-z0-9._:-]+$/),
    format: z.enum(['onnx', 'artifact']),
    releaseId: z.string().max(256).nullable(),
    installedAt: z.number(),
  })
  .strict();
const Pointer = z
  .object({ formatVersion: z.literal(1), active: Installed, previous: Installed.nullable() })
  .strict();
type PointerFile = z.infer<typeof Pointer>;

/** Kill points of an install (see replaceAtomically); the fault-injection tests stop the process at each. */
export type StoreStep =
  | 'model-written'
  | 'model-renamed'
  | 'model-synced'
  | 'pointer-written'
  | 'pointer-renamed'
  | 'pointer-synced';

export interface RecoveryReport {
  /** The active model after recovery (null: nothing valid is installed). */
  active: InstalledModel | null;
  /** Set when the active model was unusable and the previous one was restored. */
  rolledBack: { from: InstalledModel; reason: string } | null;
  /** Leftover files of interrupted installs that were removed. */
  removed: string[];
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/**
 * The models a device holds, crash-safe. `current.json` names the active version and the previous one (kept for
 * rollback); it is only ever replaced atomically, and only after the file it names is durable. So a crash or power
 * loss at any point leaves `current.json` naming complete, verified files: the old version or the new one.
 * `staging/` holds downloads in progress (resumed after a restart); nothing there is ever loaded.
 */
export class ModelStore {
  readonly dir: string;
  readonly stagingDir: string;
  readonly #pointerPath: string;
  #pointer: PointerFile | null = null;

  constructor(dir: string) {
    this.dir = dir;
    this.stagingDir = join(dir, 'staging');
    this.#pointerPath = join(dir, 'current.json');
    mkdirSync(this.stagingDir, { recursive: true, mode: 0o700 });
  }

  get active(): InstalledModel | null {
    return this.#pointer?.active ?? null;
  }

  get previous(): InstalledModel | null {
    return this.#pointer?.previous ?? null;
  }

  pathOf(model: InstalledModel): string {
    return join(this.dir, model.file);
  }

  read(model: InstalledModel): Uint8Array {
    return readFileSync(this.pathOf(model));
  }

  #usable(model: InstalledModel | null): string | null {
    if (!model) return 'none';
    const path = this.pathOf(model);
    if (!existsSync(path)) return `file ${model.file} is missing`;
    if (statSync(path).size !== model.sizeBytes) return `file ${model.file} has the wrong size`;
    if (sha256File(path) !== model.sha256) return `file ${model.file} does not match its sha256`;
    return null;
  }

  /**
   * Reads `current.json` and checks the active file against its sha256 (a corrupted disk is caught here); falls
   * back to the previous version when the active one is unusable; removes files of interrupted installs. Call once
   * at start-up, before loading a model.
   */
  recover(): RecoveryReport {
    let pointer: PointerFile | null = null;
    if (existsSync(this.#pointerPath)) {
      try {
        const parsed = Pointer.safeParse(JSON.parse(readFileSync(this.#pointerPath, 'utf8')));
        pointer = parsed.success ? parsed.data : null;
      } catch {
        pointer = null;
      }
    }
    let rolledBack: RecoveryReport['rolledBack'] = null;
    if (pointer) {
      const problem = this.#usable(pointer.active);
      if (problem !== null) {
        const prev = pointer.previous;
        if (prev && this.#usable(prev) === null) {
          rolledBack = { from: pointer.active, reason: problem };
          pointer = { formatVersion: 1, active: prev, previous: null };
          replaceAtomically(this.#pointerPath, Buffer.from(JSON.stringify(pointer)));
        } else {
          pointer = null;
        }
      } else if (pointer.previous && this.#usable(pointer.previous) !== null) {
        pointer = { ...pointer, previous: null };
      }
    }
    this.#pointer = pointer;
    const keep = new Set(['current.json', 'staging']);
    if (pointer) {
      keep.add(pointer.active.file);
      if (pointer.previous) keep.add(pointer.previous.file);
    }
    const removed: string[] = [];
    for (const name of readdirSync(this.dir)) {
      if (keep.has(name)) continue;
      rmSync(join(this.dir, name), { recursive: true, force: true });
      removed.push(name);
    }
    return { active: pointer?.active ?? null, rolledBack, removed };
  }

  /**
   * Installs verified bytes as the active version; the current active one becomes the previous. Durable before it
   * returns. `step` reports each stage (see StoreStep).
   */
  install(
    model: Omit<InstalledModel, 'file' | 'installedAt'>,
    bytes: Uint8Array | null,
    now: number,
    step: (name: StoreStep) => void = () => {},
  ): InstalledModel {
    const file = `${model.modelId}-v${model.version}-${model.sha256.slice(0, 16)}.${model.format === 'onnx' ? 'onnx' : 'eflmodel'}`;
    const installed: InstalledModel = { ...model, file, installedAt: now };
    const path = this.pathOf(installed);
    const current = this.active;
    if (bytes === null) {
      // the same bytes as the active version (a roll-forward restoring them): a hard link, no copy
      if (!current || current.sha256 !== model.sha256)
        throw new RangeError('no installed file with this sha256');
      if (!existsSync(path)) linkSync(this.pathOf(current), path);
      step('model-written');
      step('model-renamed');
      step('model-synced');
    } else if (!(existsSync(path) && sha256File(path) === model.sha256)) {
      replaceAtomically(path, bytes, (s) => step(`model-${s}`));
    }
    const previous = current && current.file !== installed.file ? current : (this.previous ?? null);
    const pointer: PointerFile = { formatVersion: 1, active: installed, previous };
    replaceAtomically(this.#pointerPath, Buffer.from(JSON.stringify(pointer)), (s) => step(`pointer-${s}`));
    this.#pointer = pointer;
    this.#prune();
    return installed;
  }

  /** Makes the previous version active again (after the new one failed to load); false when there is none. */
  rollback(): InstalledModel | null {
    const prev = this.previous;
    if (!prev || this.#usable(prev) !== null) return null;
    const pointer: PointerFile = { formatVersion: 1, active: prev, previous: null };
    replaceAtomically(this.#pointerPath, Buffer.from(JSON.stringify(pointer)));
    this.#pointer = pointer;
    this.#prune();
    return prev;
  }

  /** Removes model files that neither the active nor the previous version names. */
  #prune(): void {
    const keep = new Set([this.active?.file, this.previous?.file]);
    for (const name of readdirSync(this.dir)) {
      if (name === 'current.json' || name === 'staging' || keep.has(name)) continue;
      if (name.endsWith('.onnx') || name.endsWith('.eflmodel') || name.endsWith('.tmp'))
        rmSync(join(this.dir, name), { force: true });
    }
  }
}
