import { createHash } from 'node:crypto';
import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import {
  KAFKA_TOPICS,
  SingleObjectCodec,
  mqttBroadcastTopic,
  mqttDeviceTopic,
  type ReleaseEvent,
  type ReleaseManifest,
} from '@edgefl/contracts';
import { TYPED_BUS, type KafkaTopicValues, type Subscription, type TypedBus } from '@edgefl/bus';
import { LOGGER, ReadinessRegistry } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import { SessionsService } from '../auth/sessions.service.js';
import type { DeviceIdentity } from '../authz/acl.js';
import { GatewayMetrics } from '../metrics/gateway-metrics.js';
import { subscribeReplayed } from '../state/replayed-topic.js';
import { DEVICE_SENDER, INSTANCE_ID } from '../tokens.js';
import type { DeviceSender } from '../uplink/device-sender.js';

const MANIFEST = 'io.edgefl.registry.ReleaseManifest';
const TRANSITION = 'io.edgefl.registry.RolloutTransition';

interface OfferedRelease {
  manifest: ReleaseManifest;
  occurredAt: number;
  offered: boolean;
}

/**
 * A device's place in a release's rollout, in [0, 100): the registry's published assignment rule (first 4 bytes of
 * SHA-256(releaseId ‖ 0x0a ‖ deviceId), scaled; services/registry rollouts/assignment.ts). The gateway applies the
 * same rule to know which connected devices a staged manifest is for, without asking the registry per device.
 */
export function rolloutBucket(releaseId: string, deviceId: string): number {
  const digest = createHash('sha256').update(releaseId).update('\n').update(deviceId).digest();
  return (digest.readUInt32BE(0) / 2 ** 32) * 100;
}

/** Whether a manifest is for everyone in its tenant (retained on the broadcast topic) or for some devices. */
export function isForWholeTenant(manifest: ReleaseManifest): boolean {
  return manifest.rollout.percentage >= 100 && manifest.targeting.groups.length === 0;
}

/**
 * Whether a manifest targeted by group and/or stage is for this device (hardware/firmware/RAM: the device checks): its
 * bucket is inside the stage, or it is the stage's floor device (`rollout.floorBucket`, as the registry's manifest
 * endpoint decides).
 */
export function isForDevice(manifest: ReleaseManifest, identity: DeviceIdentity): boolean {
  if (manifest.tenant !== identity.tenant) return false;
  const groups = manifest.targeting.groups;
  if (groups.length > 0 && (identity.group === null || !groups.includes(identity.group))) return false;
  if (manifest.rollout.percentage >= 100) return true;
  const bucket = rolloutBucket(manifest.releaseId, identity.deviceId);
  // the registry's stage floor: its lowest-bucket device is in every stage (a small fleet's canary is never empty)
  const floor = manifest.rollout.floorBucket;
  return bucket < manifest.rollout.percentage || (floor !== null && bucket <= floor);
}

/**
 * The down-bridge for releases (edgefl.registry.release.v1): a manifest for the whole tenant is retained on
 * `edgefl/<tenant>/broadcast/release`; one targeted by device group or limited to a rollout stage is retained on the
 * device topic `edgefl/<tenant>/<device>/release` of each device it is for, now and whenever such a device connects
 * (so a late device gets it at once). A paused, halted or rolled-back release is withdrawn (an empty retained
 * message clears the topic) until its next manifest. Every replica reads the topic whole from the beginning.
 */
@Injectable()
export class ReleasesService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly codec = new SingleObjectCodec();
  private readonly releases = new Map<string, OfferedRelease>();
  /** Per tenant: the release whose manifest is retained on the broadcast topic, and when it was published. */
  private readonly broadcast = new Map<string, { releaseId: string; occurredAt: number }>();
  private subscription: Subscription | null = null;

  constructor(
    @Inject(TYPED_BUS) private readonly bus: TypedBus<KafkaTopicValues>,
    @Inject(DEVICE_SENDER) private readonly sender: DeviceSender,
    @Inject(INSTANCE_ID) private readonly instanceId: string,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly readiness: ReadinessRegistry,
    private readonly sessions: SessionsService,
    private readonly metrics: GatewayMetrics,
  ) {
    sessions.onConnect((identity) => this.deliverTargeted(identity));
  }

  async onApplicationBootstrap(): Promise<void> {
    ({ subscription: this.subscription } = await subscribeReplayed({
      bus: this.bus,
      readiness: this.readiness,
      check: 'releases',
      topic: KAFKA_TOPICS.registryRelease.name,
      group: `gateway-releases-${this.instanceId}`,
      handler: (record) => this.apply(record.value),
    }));
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.subscription?.close();
  }

  async apply(event: ReleaseEvent): Promise<void> {
    if (MANIFEST in event.event) {
      const manifest = event.event[MANIFEST];
      this.releases.set(event.releaseId, { manifest, occurredAt: event.occurredAt, offered: true });
      await this.place(event.releaseId, manifest, event.occurredAt);
      return;
    }
    if (TRANSITION in event.event) {
      const to = event.event[TRANSITION].toState;
      const release = this.releases.get(event.releaseId);
      if (!release || !['PAUSED', 'HALTED', 'ROLLED_BACK'].includes(to)) return;
      release.offered = false;
      await this.withdraw(event.releaseId, release.manifest);
    }
  }

  private async place(releaseId: string, manifest: ReleaseManifest, occurredAt: number): Promise<void> {
    const payload = this.codec.encode(MANIFEST, manifest);
    if (isForWholeTenant(manifest)) {
      const current = this.broadcast.get(manifest.tenant);
      if (current && current.occurredAt > occurredAt) return; // a replay of an older release must not win
      this.broadcast.set(manifest.tenant, { releaseId, occurredAt });
      await this.send(mqttBroadcastTopic(manifest.tenant, 'release'), payload);
      return;
    }
    for (const identity of this.sessions.identities())
      if (isForDevice(manifest, identity))
        await this.send(mqttDeviceTopic(identity.tenant, identity.deviceId, 'release'), payload);
  }

  private async withdraw(releaseId: string, manifest: ReleaseManifest): Promise<void> {
    const empty = Buffer.alloc(0);
    if (this.broadcast.get(manifest.tenant)?.releaseId === releaseId) {
      await this.send(mqttBroadcastTopic(manifest.tenant, 'release'), empty);
      return;
    }
    for (const identity of this.sessions.identities())
      if (isForDevice(manifest, identity))
        await this.send(mqttDeviceTopic(identity.tenant, identity.deviceId, 'release'), empty);
  }

  /** On connect: every offered targeted manifest for this device, oldest first (the newest stays retained). */
  private async deliverTargeted(identity: DeviceIdentity): Promise<void> {
    const mine = [...this.releases.values()]
      .filter((r) => r.offered && !isForWholeTenant(r.manifest) && isForDevice(r.manifest, identity))
      .sort((a, b) => a.occurredAt - b.occurredAt);
    for (const release of mine)
      await this.send(
        mqttDeviceTopic(identity.tenant, identity.deviceId, 'release'),
        this.codec.encode(MANIFEST, release.manifest),
      );
  }

  private async send(topic: string, payload: Buffer): Promise<void> {
    try {
      await this.sender.send(topic, payload, { qos: 1, retain: true });
      this.metrics.messagesOut.inc({ channel: 'release' });
    } catch (error) {
      this.logger.warn({ err: error, topic }, 'release manifest not delivered');
    }
  }
}
