/** The EventBus (bytes level) chosen by config. */
export const EVENT_BUS = Symbol.for('edgefl.bus.event-bus');
/** The TypedBus (values of catalog topics, encoded by the codec); null when no codec is configured. */
export const TYPED_BUS = Symbol.for('edgefl.bus.typed-bus');
/** The BusModuleOptions given to forRoot/forRootAsync. */
export const BUS_MODULE_OPTIONS = Symbol.for('edgefl.bus.module-options');
/** The BusMetrics (prom-client), or null without a metrics registry. */
export const BUS_METRICS = Symbol.for('edgefl.bus.metrics');
/** Metadata key of @OnEvent. */
export const ON_EVENT_METADATA = 'edgefl.bus.on-event';
/** @internal What the module opened itself (the schema registry) and closes after the bus. */
export const OWNED_RESOURCES = Symbol.for('edgefl.bus.owned-resources');
export interface OwnedResources {
  closers: Array<() => unknown>;
}
