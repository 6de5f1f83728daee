using Nacelle.ContainerCore.Cgroups;

namespace Nacelle.Tests.Unit.ContainerCore.Cgroups;

public sealed class CgroupTextTests
{
    [Theory]
    [InlineData("123\n", 123UL)]
    [InlineData("0", 0UL)]
    [InlineData("  9223372036854771712 \n", 9223372036854771712UL)]
    [InlineData("18446744073709551615\n", ulong.MaxValue)]
    public void A_number_file_is_its_decimal_value(string text, ulong expected)
    {
        Assert.True(CgroupText.TryParseNumber(System.Text.Encoding.ASCII.GetBytes(text), out var value));
        Assert.Equal(expected, value);
    }

    [Fact]
    public void Max_is_no_limit()
    {
        Assert.True(CgroupText.TryParseNumber("max\n"u8, out var value));
        Assert.Null(value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("\n")]
    [InlineData("-1\n")]
    [InlineData("+5")]
    [InlineData("12 34\n")]
    [InlineData("12abc")]
    [InlineData("18446744073709551616")]
    [InlineData("maximum")]
    public void Anything_else_is_not_a_number(string text) =>
        Assert.False(CgroupText.TryParseNumber(System.Text.Encoding.ASCII.GetBytes(text), out _));

    [Fact]
    public void Only_the_asked_keys_are_taken_and_a_missing_one_is_zero()
    {
        var text = "cache 1\nrss 2\ntotal_cache 2097152\ntotal_rss  5242880\ntotal_inactive_file 1048576\n"u8;
        Span<ulong> values = [7, 7, 7];
        var pairs = CgroupText.ParseKeyed(text, ["total_rss", "total_swap", "total_inactive_file"], values);
        Assert.Equal(5, pairs);
        Assert.Equal([5242880UL, 0UL, 1048576UL], values.ToArray());
    }

    [Fact]
    public void Lines_of_another_shape_are_skipped_and_the_last_of_a_repeated_key_wins()
    {
        // a nested key (io.stat-like), a word for a value, a prefix of a wanted key, no trailing newline
        var text = "8:0 rbytes=1 wbytes=2\nstate frozen\nrs 9\nrss 1\nrss 3\n\nnr_periods 4"u8;
        Span<ulong> values = stackalloc ulong[2];
        Assert.Equal(4, CgroupText.ParseKeyed(text, ["rss", "nr_periods"], values));
        Assert.Equal([3UL, 4UL], values.ToArray());

        var all = CgroupText.ParseKeyed(text);
        Assert.Equal(new Dictionary<string, ulong> { ["rs"] = 9, ["rss"] = 3, ["nr_periods"] = 4 }, all);
    }

    [Fact]
    public void Fewer_values_than_keys_is_a_caller_error() =>
        Assert.Throws<ArgumentException>(() => CgroupText.ParseKeyed("a 1\n"u8, ["a", "b"], new ulong[1]));
}
