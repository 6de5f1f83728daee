using System.Formats.Tar;
using System.Text;
using Nacelle.Tests.Support.Registry;

namespace Nacelle.Bench.Cri;

/// <summary>
/// The pull benchmark's image: 6 gzip layers, about 98 MB compressed, built from seeded pseudo-random data (so every
/// run pushes the same bytes). Each layer is a directory tree like an application layer's: incompressible files
/// (binaries, compressed assets: 4 KB to 2 MB of random bytes) and text files (sources, configs, docs: 1 KB to 160 KB of
/// words and numbers, which gzip shrinks about 3x), plus a few symlinks and hard links. gzip at level 6, as docker and
/// buildkit write layers.
/// </summary>
internal static class PullImageBuilder
{
    public const int Layers = 6;

    // Per layer: ~7.2 MB of random files and ~21 MB of text (~9 MB gzipped): ~16.3 MB compressed, ~28 MB unpacked.
    private const long RandomBytesPerLayer = 7_200_000;
    private const long TextBytesPerLayer = 21_000_000;

    public static TestImageSpec Build(int seed = 15)
    {
        var vocabulary = Vocabulary(new Random(seed));
        var layers = new List<TestLayer>(Layers);
        for (var i = 0; i < Layers; i++)
        {
            layers.Add(TestLayer.Create(LayerTar(i, new Random(seed * 1000 + i), vocabulary)));
        }

        return new TestImageSpec { Layers = layers, Cmd = ["/bin/sh"] };
    }

    private static byte[] LayerTar(int index, Random random, string[] vocabulary)
    {
        using var output = new MemoryStream();
        using (var tar = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true))
        {
            var root = $"opt/app{index}";
            var directories = new List<string>();
            for (var d = 0; d < 40; d++)
            {
                var parent = directories.Count == 0 || random.Next(4) == 0 ? root : directories[random.Next(directories.Count)];
                directories.Add($"{parent}/d{d}");
            }

            foreach (var dir in new[] { "opt", root }.Concat(directories))
            {
                tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, dir + "/") { Mode = (UnixFileMode)0x1ED, ModificationTime = TarBuilder.FixedTime });
            }

            var files = new List<string>();
            long randomLeft = RandomBytesPerLayer, textLeft = TextBytesPerLayer;
            for (var n = 0; randomLeft > 0 || textLeft > 0; n++)
            {
                var text = textLeft > 0 && (randomLeft <= 0 || random.Next(10) < 8);
                var size = text ? (int)Math.Min(textLeft, 1024 + random.Next(160 * 1024)) : (int)Math.Min(randomLeft, 4096 + (long)(Math.Pow(random.NextDouble(), 3) * 2_000_000));
                var content = text ? Text(random, vocabulary, size) : RandomBytes(random, size);
                if (text)
                {
                    textLeft -= size;
                }
                else
                {
                    randomLeft -= size;
                }

                var path = $"{directories[random.Next(directories.Count)]}/{(text ? "f" : "b")}{n}{(text ? ".txt" : ".bin")}";
                files.Add(path);
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, path)
                {
                    Mode = (UnixFileMode)(text ? 0x1A4 : 0x1ED),
                    ModificationTime = TarBuilder.FixedTime,
                    DataStream = new MemoryStream(content),
                });
            }

            for (var l = 0; l < 20; l++)
            {
                tar.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, $"{root}/link{l}") { LinkName = "/" + files[random.Next(files.Count)], ModificationTime = TarBuilder.FixedTime });
                tar.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, $"{root}/hard{l}") { LinkName = files[random.Next(files.Count)], ModificationTime = TarBuilder.FixedTime });
            }
        }

        return output.ToArray();
    }

    private static string[] Vocabulary(Random random)
    {
        var words = new string[4096];
        for (var i = 0; i < words.Length; i++)
        {
            var chars = new char[2 + random.Next(9)];
            for (var c = 0; c < chars.Length; c++)
            {
                chars[c] = (char)('a' + random.Next(26));
            }

            words[i] = new string(chars);
        }

        return words;
    }

    private static byte[] Text(Random random, string[] vocabulary, int size)
    {
        var text = new StringBuilder(size + 128);
        while (text.Length < size)
        {
            var words = 4 + random.Next(12);
            text.Append(' ', random.Next(3) * 4);
            for (var w = 0; w < words; w++)
            {
                // Zipf-like: common words far more often than rare ones, as in real text.
                var rank = (int)(Math.Pow(random.NextDouble(), 2.5) * vocabulary.Length);
                text.Append(random.Next(20) == 0 ? random.Next(100000).ToString(System.Globalization.CultureInfo.InvariantCulture) : vocabulary[rank]);
                text.Append(w + 1 < words ? ' ' : '\n');
            }
        }

        return Encoding.ASCII.GetBytes(text.ToString(0, size));
    }

    private static byte[] RandomBytes(Random random, int size)
    {
        var bytes = new byte[size];
        random.NextBytes(bytes);
        return bytes;
    }
}
