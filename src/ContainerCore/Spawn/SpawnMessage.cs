using System.Buffers.Binary;
using System.Text;
using Nacelle.Common;

namespace Nacelle.ContainerCore.Spawn;

/// <summary>Encodes a <see cref="SpawnRequest"/> as the flat, versioned message of <c>native/spawn_protocol.h</c>.</summary>
public static class SpawnMessage
{
    public static byte[] Encode(SpawnRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var w = new Writer();
        w.Record(SpawnProtocol.RecCloneFlags, r => r.U64(request.CloneFlags));
        foreach (var tasks in request.CgroupThreadFiles)
        {
            w.Record(SpawnProtocol.RecCgroupThread, r => r.Str(tasks));
        }

        if (request.CgroupCloneInto is { } into)
        {
            w.Record(SpawnProtocol.RecCgroupInto, r => r.Str(into));
        }

        foreach (var join in request.JoinNamespaces)
        {
            w.Record(SpawnProtocol.RecJoinNs, r => r.U32((uint)join.Type).Str(join.Path));
        }

        if (request.UidMap is { } uidMap)
        {
            w.Record(SpawnProtocol.RecUidMap, r => r.Str(uidMap));
        }

        if (request.GidMap is { } gidMap)
        {
            w.Record(SpawnProtocol.RecGidMap, r => r.Str(gidMap));
        }

        if (request.OomScoreAdj is { } oom)
        {
            w.Record(SpawnProtocol.RecOomScoreAdj, r => r.U32(unchecked((uint)oom)));
        }

        if (request.Rootfs is { } rootfs)
        {
            w.Record(SpawnProtocol.RecRootfs, r => r.Str(rootfs));
            w.Record(SpawnProtocol.RecRootPropagation, r => r.U64(request.PropagationBeforePivot).U64(request.PropagationAfterPivot));
            if (request.RootfsDetached)
            {
                w.Record(SpawnProtocol.RecRootfsDetached, _ => { });
            }
        }

        foreach (var m in request.Mounts)
        {
            w.Record(SpawnProtocol.RecMount, r => r.U64(m.Flags).U64(m.Propagation).U32(m.Kind)
                .U32(m.TargetIsFile ? SpawnProtocol.CreateFile : SpawnProtocol.CreateDir)
                .Str(m.Source).Str(m.Target).Str(m.FsType).Str(m.Data));
        }

        foreach (var d in request.Devices)
        {
            w.Record(SpawnProtocol.RecDevice, r => r.U32(d.Type).U32(d.Mode).U32(d.Major).U32(d.Minor).U32(d.Uid).U32(d.Gid).Str(d.Path));
        }

        foreach (var (target, link) in request.Symlinks)
        {
            w.Record(SpawnProtocol.RecSymlink, r => r.Str(target).Str(link));
        }

        foreach (var path in request.MaskedPaths)
        {
            w.Record(SpawnProtocol.RecMaskedPath, r => r.Str(path));
        }

        foreach (var path in request.ReadonlyPaths)
        {
            w.Record(SpawnProtocol.RecReadonlyPath, r => r.Str(path));
        }

        if (request.RootReadonly)
        {
            w.Record(SpawnProtocol.RecRootReadonly, _ => { });
        }

        if (!string.IsNullOrEmpty(request.Hostname))
        {
            w.Record(SpawnProtocol.RecHostname, r => r.Str(request.Hostname));
        }

        if (!string.IsNullOrEmpty(request.Domainname))
        {
            w.Record(SpawnProtocol.RecDomainname, r => r.Str(request.Domainname));
        }

        foreach (var (path, value) in request.Sysctls)
        {
            w.Record(SpawnProtocol.RecSysctl, r => r.Str(path).Str(value));
        }

        foreach (var limit in request.Rlimits)
        {
            w.Record(SpawnProtocol.RecRlimit, r => r.U32((uint)limit.Resource).U32(0).U64(limit.Soft).U64(limit.Hard));
        }

        if (request.User is { } user)
        {
            w.Record(SpawnProtocol.RecUser, r =>
            {
                r.U32(user.Uid).U32(user.Gid).U32((uint)user.AdditionalGids.Count);
                foreach (var gid in user.AdditionalGids)
                {
                    r.U32(gid);
                }
            });
        }

        if (request.Umask is { } umask)
        {
            w.Record(SpawnProtocol.RecUmask, r => r.U32(umask));
        }

        if (request.NoNewPrivileges)
        {
            w.Record(SpawnProtocol.RecNoNewPrivs, _ => { });
        }

        if (request.Capabilities is { } caps)
        {
            w.Record(SpawnProtocol.RecCaps, r => r.U32((uint)request.LastCapability).U32(0)
                .U64(caps.Bounding).U64(caps.Effective).U64(caps.Inheritable).U64(caps.Permitted).U64(caps.Ambient));
        }

        if (request.Seccomp is { } seccomp)
        {
            if (seccomp.Filter.Length == 0 || seccomp.Filter.Length % 8 != 0)
            {
                throw NacelleException.InvalidArgument("seccomp: the compiled filter is empty or not whole instructions");
            }

            w.Record(SpawnProtocol.RecSeccomp, r => r.U32(seccomp.Flags).U32(0).Bytes(seccomp.Filter));
        }

        w.Record(SpawnProtocol.RecCwd, r => r.Str(request.Cwd));
        foreach (var arg in request.Args)
        {
            w.Record(SpawnProtocol.RecArg, r => r.Str(arg));
        }

        foreach (var variable in request.Env)
        {
            w.Record(SpawnProtocol.RecEnv, r => r.Str(variable));
        }

        if (request.Park)
        {
            w.Record(SpawnProtocol.RecPark, _ => { });
        }

        if (request.NewSession)
        {
            w.Record(SpawnProtocol.RecNewSession, _ => { });
        }

        if (request.Terminal is { } terminal)
        {
            w.Record(SpawnProtocol.RecTerminal, r => r.U32(terminal.Rows).U32(terminal.Columns));
        }

        if (request.AppArmorProfile is { } profile)
        {
            w.Record(SpawnProtocol.RecApparmor, r => r.Str(profile));
        }

        if (request.SelinuxLabel is { } label)
        {
            w.Record(SpawnProtocol.RecSelinuxLabel, r => r.Str(label));
        }

        return w.Finish();
    }

    /// <summary>The connect mode's message: join the network namespace at <paramref name="netnsPath"/> and connect to
    /// <paramref name="port"/> on loopback (spawn_protocol.h, NSP_REC_CONNECT).</summary>
    public static byte[] EncodeConnect(string netnsPath, int port)
    {
        ArgumentException.ThrowIfNullOrEmpty(netnsPath);
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        var w = new Writer();
        w.Record(SpawnProtocol.RecJoinNs, r => r.U32((uint)MountFlags.CLONE_NEWNET).Str(netnsPath));
        w.Record(SpawnProtocol.RecConnect, r => r.U32((uint)port).U32(0));
        return w.Finish();
    }

    private sealed class Writer
    {
        private readonly MemoryStream _out = new();
        private readonly Payload _payload = new();

        public Writer()
        {
            Span<byte> header = stackalloc byte[SpawnProtocol.HeaderSize];
            _out.Write(header); // filled in by Finish
        }

        public void Record(ushort type, Action<Payload> fill)
        {
            _payload.Reset();
            fill(_payload);
            var body = _payload.Written;
            Span<byte> header = stackalloc byte[SpawnProtocol.RecordHeaderSize];
            BinaryPrimitives.WriteUInt16LittleEndian(header, type);
            BinaryPrimitives.WriteUInt16LittleEndian(header[2..], 0);
            BinaryPrimitives.WriteUInt32LittleEndian(header[4..], (uint)body.Length);
            _out.Write(header);
            _out.Write(body);
            var pad = (8 - body.Length % 8) % 8;
            for (var i = 0; i < pad; i++)
            {
                _out.WriteByte(0);
            }
        }

        public byte[] Finish()
        {
            var bytes = _out.ToArray();
            BinaryPrimitives.WriteUInt32LittleEndian(bytes, SpawnProtocol.Magic);
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), SpawnProtocol.Version);
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), (uint)bytes.Length);
            return bytes;
        }
    }

    /// <summary>Builds one record's payload: little-endian integers and NUL-terminated UTF-8 strings.</summary>
    public sealed class Payload
    {
        private readonly MemoryStream _buffer = new();

        internal void Reset() => _buffer.SetLength(0);

        internal ReadOnlySpan<byte> Written => _buffer.GetBuffer().AsSpan(0, (int)_buffer.Length);

        public Payload U32(uint value)
        {
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(b, value);
            _buffer.Write(b);
            return this;
        }

        public Payload U64(ulong value)
        {
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(b, value);
            _buffer.Write(b);
            return this;
        }

        public Payload Str(string value)
        {
            if (value.Contains('\0'))
            {
                throw NacelleException.InvalidArgument($"a string for the spawn helper contains a NUL byte: '{value.Replace("\0", "\\0")}'");
            }

            _buffer.Write(Encoding.UTF8.GetBytes(value));
            _buffer.WriteByte(0);
            return this;
        }

        public Payload Bytes(ReadOnlySpan<byte> value)
        {
            _buffer.Write(value);
            return this;
        }
    }
}
