import { Injectable } from '@nestjs/common';

export interface ReadinessResult {
  ready: boolean;
  detail?: Record<string, unknown> | string;
}

export type ReadinessCheck = () => ReadinessResult | Promise<ReadinessResult>;

/**
 * The dependencies a service needs before it takes traffic (bus, keys, stores, brokers). Adapters register a check;
 * `/health/ready` runs them all. While the service drains on shutdown it reports not ready.
 */
@Injectable()
export class ReadinessRegistry {
  private readonly checks = new Map<string, ReadinessCheck>();
  private drainingSince: number | null = null;

  register(name: string, check: ReadinessCheck): void {
    if (this.checks.has(name)) throw new Error(`readiness check "${name}" is registered twice`);
    this.checks.set(name, check);
  }

  markDraining(): void {
    this.drainingSince ??= Date.now();
  }

  get draining(): boolean {
    return this.drainingSince !== null;
  }

  names(): string[] {
    return [...this.checks.keys()];
  }

  async run(timeoutMs = 2_000): Promise<Record<string, ReadinessResult>> {
    const entries = await Promise.all(
      [...this.checks].map(async ([name, check]): Promise<[string, ReadinessResult]> => {
        let timer: NodeJS.Timeout | undefined;
        try {
          const timeout = new Promise<ReadinessResult>((resolve) => {
            timer = setTimeout(
              () => resolve({ ready: false, detail: `no answer within ${timeoutMs} ms` }),
              timeoutMs,
            );
          });
          return [name, await Promise.race([Promise.resolve(check()), timeout])];
        } catch (error) {
          return [name, { ready: false, detail: (error as Error).message }];
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    return Object.fromEntries(entries);
  }
}
