// The registry formats field mode reads, one per schema type the registry serves.
import { avroFields } from './avro-fields.js';
import { jsonSchemaFields } from './json-schema-fields.js';
import { protobufFields } from './protobuf-fields.js';
import type { SchemaFormat } from './schema-fields.js';

export const REGISTRY_FORMATS: readonly SchemaFormat[] = [avroFields, protobufFields, jsonSchemaFields];
