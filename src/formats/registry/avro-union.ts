// avsc's two union types alike (a union is wrapped when its branches cannot be told apart by value).
import type avro from 'avsc';

export type UnionType = (avro.types.UnwrappedUnionType | avro.types.WrappedUnionType) & { readonly types: avro.Type[] };
