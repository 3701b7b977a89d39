// The events a release puts in the outbox (edgefl.registry.release.v1, keyed by the release so its order holds):
// each transition, and the signed manifest of a stage (or of a rollback's roll-forward).
import { KAFKA_TOPICS, type KafkaTopicValue } from '@edgefl/contracts';
import { randomUUID } from 'node:crypto';
import { enqueueEvent } from '../events/outbox.js';
import type { ManifestSigner } from '../manifest/manifest-signer.service.js';
import { artifactPath, deltaPath } from '../models/paths.js';
import { stageFloor } from './assignment.js';
import type { Release, RollForward, RolloutState, Targeting } from '../storage/records.js';
import type { RegistryStore } from '../storage/registry-store.js';

/** Puts one `edgefl.registry.release.v1` event of a release in the outbox. */
function enqueueReleaseEvent(
  tx: RegistryStore,
  release: Release,
  now: number,
  event: KafkaTopicValue<typeof KAFKA_TOPICS.registryRelease.name>['event'],
): Promise<void> {
  return enqueueEvent(
    tx,
    KAFKA_TOPICS.registryRelease.name,
    {
      eventId: randomUUID(),
      tenant: release.tenantId,
      releaseId: release.id,
      modelId: release.modelId,
      occurredAt: now,
      event,
    },
    release.id,
    now,
  );
}

export function enqueueTransition(
  tx: RegistryStore,
  release: Release,
  from: RolloutState,
  to: RolloutState,
  reason: string,
  now: number,
  rollForward: RollForward | null = null,
): Promise<void> {
  const stage = release.stages[release.stageIndex]!;
  return enqueueReleaseEvent(tx, release, now, {
    'io.edgefl.registry.RolloutTransition': {
      releaseId: release.id,
      fromState: from,
      toState: to,
      stage: { stage: stage.name, percentage: stage.percentage, floorBucket: null },
      reason,
      // the roll-forward as data (the contract's record has no label: it is in the version event)
      rollForward: rollForward && {
        version: rollForward.version,
        restoredVersion: rollForward.restoredVersion,
        sha256: rollForward.sha256,
        rollbackOf: rollForward.rollbackOf,
      },
    },
  });
}

/**
 * The release's signed manifest for its current stage, as an event (the gateway retains it for devices); or,
 * with `what`, another version under the release (a rollback's roll-forward, stage "rollback", 100%).
 */
export async function enqueueManifest(
  tx: RegistryStore,
  signer: ManifestSigner,
  release: Release,
  now: number,
  what?: { version: number; stage: { name: string; percentage: number }; targeting: Targeting },
): Promise<void> {
  const number = what?.version ?? release.version;
  const version = await tx.catalog.getVersion(release.modelId, number);
  if (!version) return;
  const deltas = await tx.catalog.listDeltas(release.modelId, number);
  const t = what?.targeting ?? release.targeting;
  const signed = await signer.signed({ version, deltas, targeting: t });
  const stage = what?.stage ?? release.stages[release.stageIndex]!;
  const floor = stage.percentage >= 100 || what ? Infinity : await stageFloor(tx.devices, release);
  await enqueueReleaseEvent(tx, release, now, {
    'io.edgefl.registry.ReleaseManifest': {
      releaseId: release.id,
      tenant: release.tenantId,
      modelId: release.modelId,
      version: number,
      label: version.label,
      artifactUri: artifactPath(release.modelId, number),
      sha256: version.sha256,
      sizeBytes: version.sizeBytes,
      signature: Buffer.from(signed.signatures[0]!.sig, 'base64'),
      signingKeyId: signed.signatures[0]!.keyId,
      deltas: deltas.map((d) => ({
        fromVersion: d.fromVersion,
        sha256: d.sha256,
        sizeBytes: d.sizeBytes,
        uri: deltaPath(d.modelId, d.fromVersion, d.toVersion),
      })),
      rollout: {
        stage: stage.name,
        percentage: stage.percentage,
        floorBucket: Number.isFinite(floor) ? floor : null,
      },
      targeting: {
        minRamBytes: t.minRamBytes,
        firmwareRange: t.firmwareRange,
        hardwareClasses: t.hardwareClasses,
        groups: t.groups,
      },
      expiresAt: Date.parse(signed.signed.expires),
      createdAt: Date.parse(signed.signed.created),
      // the envelope exactly as GET /v1/devices/{id}/manifest serves it in `manifest`
      signedManifest: JSON.stringify(signed),
    },
  });
}
