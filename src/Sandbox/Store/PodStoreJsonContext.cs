using System.Text.Json.Serialization;

namespace Nacelle.Sandbox.Store;

/// <summary>Source-generated (reflection-free, Native AOT) JSON for the store's text columns: labels, annotations, ips.</summary>
[JsonSerializable(typeof(Dictionary<string, string>))]
[JsonSerializable(typeof(List<string>))]
internal sealed partial class PodStoreJsonContext : JsonSerializerContext;
