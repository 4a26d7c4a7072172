// Development tooling (src/dev/): the local schema registry that the tests start. Not part of the
// product's API: the package's main entry does not export it.
export { LocalSchemaRegistry, REGISTRY_JAVA_VERSION, type LocalSchemaRegistryOptions } from './local-schema-registry.js';
export { resolveApicurioRegistry, DEFAULT_APICURIO_VERSION, apicurioPom, type ApicurioOptions } from './apicurio-artifact.js';
export { findJava, parseJavaVersion, JavaNotFoundError, type JavaInstallation } from './java.js';
